//! Turning errors into messages a person can act on.

use ferry_core::config::render_snippet;
use ferry_core::{Error, ErrorKind};

/// The full text shown for an error: the message, the offending config line with a
/// caret when the error has a position, and a hint. Passed through the leak guard.
pub fn render_error(e: &Error) -> String {
    let mut out = format!("error: {e}\n");
    if let (Some(file), Some(line), Some(col)) = (
        e.context_value("file"),
        e.context_value("line"),
        e.context_value("column"),
    ) {
        let line: usize = line.parse().unwrap_or(0);
        let col: usize = col.parse().unwrap_or(0);
        if let Ok(text) = std::fs::read_to_string(file) {
            if file.ends_with(".toml") {
                out.push_str(&render_snippet(file, &text, line, col));
            }
        }
    }
    if let Some(h) = e.kind().hint() {
        out.push_str(&format!("  hint: {h}\n"));
    }
    ferry_core::redact::redact(&out)
}

/// The exit code for an error that stopped a command.
pub fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::ConfigInvalid => 2,
        ErrorKind::Cancelled => 130,
        _ => 1,
    }
}
