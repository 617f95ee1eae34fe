//! Progress for commands that may run longer than a second: a bar on stderr when stderr is a
//! terminal, nothing otherwise (scripts and CI logs get only the summary line).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` steps, labelled with what is counted.
pub fn bar(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({elapsed}, {eta} left)")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// A spinner with a running count, for work of unknown length.
pub fn counter(what: &'static str) -> ProgressBar {
    let spinner = ProgressBar::with_draw_target(None, draw_target());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {pos} {msg} ({elapsed}, {per_sec})")
            .expect("the template is valid"),
    );
    spinner.set_message(what);
    spinner
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
