//! What commands print: a table for people, or JSON for programs with `--output json` (JSON
//! Lines for lists: one object per line), always with the query API's field names, because
//! both render the same representation.

use std::io::Write;

use serde_json::Value;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns for people
    #[default]
    Table,
    /// JSON Lines: one object per line, the API's field names
    Json,
}

/// Output the reader is still reading could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing output: {0}")]
pub struct OutputError(#[from] std::io::Error);

/// A table column: its header, the representation's field it shows, and its width.
pub struct Column {
    pub header: &'static str,
    pub field: &'static str,
    pub width: usize,
}

impl Column {
    pub const fn new(header: &'static str, field: &'static str, width: usize) -> Self {
        Self {
            header,
            field,
            width,
        }
    }
}

/// A list: one JSON object per line, or a table of the given columns.
pub fn print_list(
    format: OutputFormat,
    items: &[Value],
    columns: &[Column],
) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    let written = match format {
        OutputFormat::Json => items.iter().try_for_each(|item| {
            serde_json::to_writer(&mut out, item).map_err(std::io::Error::from)?;
            writeln!(out)
        }),
        OutputFormat::Table => {
            let row = |cells: Vec<String>| {
                let last = cells.len().saturating_sub(1);
                cells
                    .into_iter()
                    .zip(columns)
                    .enumerate()
                    .map(|(i, (text, column))| {
                        if i == last {
                            text
                        } else {
                            format!("{text:<width$} ", width = column.width)
                        }
                    })
                    .collect::<String>()
            };
            writeln!(
                out,
                "{}",
                row(columns.iter().map(|c| c.header.to_owned()).collect())
            )
            .and_then(|()| {
                items.iter().try_for_each(|item| {
                    let cells = columns.iter().map(|c| cell(&item[c.field])).collect();
                    writeln!(out, "{}", row(cells))
                })
            })
        }
    };
    quiet_on_closed_pipe(written)
}

/// One result: the object on one line as JSON, or the sentence for people.
pub fn print_result(
    format: OutputFormat,
    value: &Value,
    sentence: impl std::fmt::Display,
) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    let written = match format {
        OutputFormat::Json => writeln!(out, "{value}"),
        OutputFormat::Table => writeln!(out, "{sentence}"),
    };
    quiet_on_closed_pipe(written)
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        // As people write numbers: 22, not JSON's 22.0.
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_f64().map(|f| f.to_string()))
            .unwrap_or_else(|| n.to_string()),
        Value::Object(map) if map.is_empty() => "-".to_owned(),
        // Sorted, so a table reads the same whatever order the map keeps.
        Value::Object(map) => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect();
            pairs.sort_unstable();
            pairs.join(",")
        }
        other => other.to_string(),
    }
}

/// `iotdp … | head` closes the pipe early: that is the reader's choice, not an error.
fn quiet_on_closed_pipe(written: std::io::Result<()>) -> Result<(), OutputError> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(OutputError(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_show_what_people_read() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&json!("ac-1")), "ac-1");
        assert_eq!(cell(&json!(21.5)), "21.5");
        assert_eq!(cell(&json!(22.0)), "22");
        assert_eq!(cell(&json!(600)), "600");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!({})), "-");
        assert_eq!(
            cell(&json!({"owner": "ops", "floor": "2"})),
            "floor=2,owner=ops"
        );
    }
}
