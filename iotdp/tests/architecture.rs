//! The structure ARCHITECTURE.md describes, held against the code: every module and folder is
//! on the code map, every `use crate::…` respects the layers, ports do not reach into the use
//! cases that drive them, adapter families stay apart, and pure modules stay pure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `iotdp/src/ingest/service.rs` → `ingest::service`; `…/ingest/mod.rs` → `ingest`.
fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (so prose may mention anything).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` path a file names, with `use crate::{…}` groups expanded, as its
/// first two segments (`ingest::ports`).
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |path: &str| {
        let segments: Vec<&str> = path
            .split("::")
            .map(str::trim)
            .take_while(|s| s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty())
            .collect();
        if !segments.is_empty() {
            found.insert(
                segments
                    .iter()
                    .take(2)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("::"),
            );
        }
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        add(&item);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            add(&item);
        } else {
            add(after);
        }
        rest = after;
    }
    found
}

/// The layer of a top-level module, as ARCHITECTURE.md's table gives it.
fn layer(top: &str) -> u8 {
    match top {
        "domain" | "retry" | "macros" => 0,
        "alerting" => 1,
        "devices" | "commands" => 2,
        "ingest" | "query" => 3,
        "rollup" => 4,
        "api" => 5,
        "config" => 6,
        "adapters" => 7,
        "wiring" => 8,
        other => panic!("module `{other}` has no layer: add it to ARCHITECTURE.md and here"),
    }
}

/// Features on the same layer that must not see each other.
fn siblings(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        ("ingest", "query")
            | ("query", "ingest")
            | ("devices", "commands")
            | ("commands", "devices")
    )
}

const USE_CASES: &[&str] = &[
    "alerting::evaluator",
    "alerting::admin",
    "devices::cache",
    "devices::silence",
    "devices::presence",
    "devices::provisioning",
    "ingest::service",
    "ingest::store_writer",
    "rollup::job",
    "rollup::late",
    "rollup::reads",
    "commands::service",
    "commands::shadow_events",
];

const PURE: &[&str] = &[
    "domain",
    "alerting::rule",
    "alerting::event",
    "alerting::state_machine",
    "alerting::notification",
    "alerting::iot_events",
    "devices::record",
    "devices::admission",
    "devices::heard",
    "ingest::envelope",
    "ingest::validation",
    "ingest::batch",
    "ingest::quarantine",
    "ingest::metrics",
    "query::model",
    "query::names",
    "rollup::tier",
    "rollup::aggregate",
    "rollup::model",
    "rollup::compute",
    "api::access",
    "api::routes",
    "commands::shadow",
    "commands::command",
];

fn product_modules() -> Vec<(String, PathBuf, String)> {
    let src = repo_root().join("iotdp/src");
    rust_files(&src)
        .into_iter()
        .map(|file| {
            let module = module_path(&src, &file);
            let code = code_only(&std::fs::read_to_string(&file).unwrap());
            (module, file, code)
        })
        .collect()
}

/// What is wrong with `module` importing `target` (both as `a::b` paths), if anything.
fn forbidden(module: &str, target: &str) -> Option<String> {
    let top = module.split("::").next().unwrap_or_default();
    let target_top = target.split("::").next().unwrap_or_default();
    if top.is_empty() || top == target_top {
        if top == "adapters" {
            let family = module.split("::").nth(1);
            let target_family = target.split("::").nth(1);
            if family.is_some() && target_family.is_some() && family != target_family {
                return Some("an adapter family imports another adapter family".into());
            }
        }
        if module.ends_with("::ports") && USE_CASES.contains(&target) {
            return Some("a port imports the use case that drives it".into());
        }
        return None;
    }
    if layer(target_top) > layer(top) {
        return Some(format!(
            "layer {} imports layer {} (`{target_top}` is above `{top}`)",
            layer(top),
            layer(target_top)
        ));
    }
    if siblings(top, target_top) {
        return Some(format!("`{top}` and `{target_top}` are separate features"));
    }
    if module.ends_with("::ports") && USE_CASES.contains(&target) {
        return Some("a port imports a use case".into());
    }
    None
}

#[test]
fn every_import_respects_the_layers() {
    let mut violations = Vec::new();
    for (module, file, code) in product_modules() {
        for target in crate_imports(&code) {
            if let Some(why) = forbidden(&module, &target) {
                violations.push(format!("{}: `crate::{target}`: {why}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports ARCHITECTURE.md's layers forbid:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_rules_catch_what_they_forbid() {
    // The rules themselves, on imports the crate must never contain.
    assert!(forbidden("domain", "devices::record").is_some());
    assert!(forbidden("alerting::ports", "alerting::evaluator").is_some());
    assert!(forbidden("adapters::timestream::query", "adapters::influxdb").is_some());
    assert!(forbidden("api", "adapters::influxdb").is_some());
    assert!(forbidden("ingest::service", "wiring").is_some());
    assert!(forbidden("query::names", "ingest::ports").is_some());
    // And allow what they allow.
    assert!(forbidden("ingest::service", "devices::ports").is_none());
    assert!(forbidden("adapters::influxdb::influxql", "adapters::influxdb").is_none());
    assert!(forbidden("wiring", "adapters::timestream").is_none());
}

#[test]
fn the_import_graph_of_the_product_crate_has_no_cycles() {
    let modules = product_modules();
    let names: BTreeSet<&str> = modules.iter().map(|(m, _, _)| m.as_str()).collect();
    // Edges between modules: a path resolves to the longest module it names (an item
    // re-exported at `domain` resolves to `domain`), and a module re-exporting a child
    // (`pub use place::*`) depends on that child.
    let resolve = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|candidate| names.contains(candidate.as_str()))
    };
    let mut edges: Vec<(String, String)> = Vec::new();
    for (module, _, code) in &modules {
        let mut targets: Vec<String> = crate_imports(code).into_iter().collect();
        for line in code.lines().map(str::trim) {
            if let Some(child) = line
                .strip_prefix("pub use ")
                .and_then(|rest| rest.split("::").next())
            {
                let prefix = if module.is_empty() {
                    String::new()
                } else {
                    format!("{module}::")
                };
                targets.push(format!("{prefix}{child}"));
            }
        }
        for target in targets {
            if let Some(to) = resolve(&target)
                && to != *module
            {
                edges.push((module.clone(), to));
            }
        }
    }
    assert!(
        edges
            .iter()
            .any(|(from, to)| from == "ingest::service" && to == "devices::ports"),
        "the import reader found no edge from ingest::service to devices::ports"
    );
    // Peel off every module nothing in the remaining set imports, or that imports nothing in
    // it: what is left sits on a cycle.
    let mut nodes: BTreeSet<String> = names.iter().map(|m| (*m).to_owned()).collect();
    loop {
        let off_cycle = nodes
            .iter()
            .find(|n| {
                let imports = edges.iter().any(|(f, t)| f == *n && nodes.contains(t));
                let imported = edges.iter().any(|(f, t)| t == *n && nodes.contains(f));
                !imports || !imported
            })
            .cloned();
        match off_cycle {
            Some(n) => {
                nodes.remove(&n);
            }
            None => break,
        }
    }
    assert!(nodes.is_empty(), "modules on an import cycle: {nodes:?}");
}

#[test]
fn pure_modules_have_no_async_and_no_aws_types() {
    for (module, file, code) in product_modules() {
        let pure = PURE
            .iter()
            .any(|p| module == *p || module.starts_with(&format!("{p}::")));
        if !pure {
            continue;
        }
        for word in ["async ", ".await", "tokio::", "aws_"] {
            assert!(
                !code.contains(word),
                "{} is pure but its code contains `{word}`",
                file.display()
            );
        }
    }
}

#[test]
fn the_code_map_names_every_module_and_folder() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for crate_dir in ["iotdp/src", "local/src"] {
        for file in rust_files(&root.join(crate_dir)) {
            let relative = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = file.file_name().unwrap().to_string_lossy();
            let wanted = match name.as_ref() {
                "lib.rs" => continue,
                "mod.rs" if !relative.ends_with("api/mod.rs") => {
                    format!("`{}/`", relative.trim_end_matches("/mod.rs"))
                }
                _ => format!("`{relative}`"),
            };
            if !map.contains(&wanted) {
                missing.push(wanted);
            }
        }
    }
    for folder in repository_folders(&root) {
        if !map.contains(&format!("{folder}/")) {
            missing.push(format!("{folder}/"));
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {}",
        missing.join(", ")
    );
}

/// The repository's folders, two levels deep, without build output and installed tools.
fn repository_folders(root: &Path) -> Vec<String> {
    const NOT_OURS: &[&str] = &[
        "target",
        ".git",
        ".venv",
        ".tools",
        ".local",
        ".aws-sam",
        "node_modules",
    ];
    let mut out = Vec::new();
    let list = |dir: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                !NOT_OURS.contains(&name.as_ref()) && (name == ".ci" || !name.starts_with('.'))
            })
            .collect();
        dirs.sort();
        dirs
    };
    for top in list(root) {
        let name = top.file_name().unwrap().to_string_lossy().into_owned();
        for inner in list(&top) {
            out.push(format!(
                "{name}/{}",
                inner.file_name().unwrap().to_string_lossy()
            ));
        }
        out.push(name);
    }
    out
}
