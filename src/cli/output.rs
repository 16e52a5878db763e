//! Turning errors into messages a person can act on, and exit codes.
//!
//! Exit codes, the same for every command (README "Exit codes", held by `tests/cli_ux.rs`):
//! 0 ok (for `plan`: nothing would change), 1 the run, a connection or a check failed,
//! 2 the configuration or the command line is wrong (a missing config file included),
//! 3 `plan` only: something would change, or it cannot tell, 130 interrupted (Ctrl-C).

use std::io::Write;

use ferry_core::config::render_snippet;
use ferry_core::{Error, ErrorKind};

/// Exit code: the configuration or the command line is wrong.
pub const CONFIG: u8 = 2;

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
    if let Some(h) = hint(e) {
        out.push_str(&format!("  hint: {h}\n"));
    }
    ferry_core::redact::redact(&out)
}

/// The next step for this error: from its kind, made precise by where it happened
/// (a vault, a config file that is not there, a destination bound to another client).
pub fn hint(e: &Error) -> Option<String> {
    let file = e.context_value("file").unwrap_or("");
    let vault = file.ends_with(".vault");
    let h = match e.kind() {
        ErrorKind::AuthFailed if vault => {
            "the vault did not open with this passphrase or key: type the client's vault \
             passphrase again, or set FERRY_PASSPHRASE / FERRY_MASTER_KEY to the one it was made with"
        }
        ErrorKind::AuthFailed if e.context_value("bucket").is_some() => {
            "set `access_key_id` and `secret_access_key` as references (`ferry secrets set \
             s3_key`, then `\"${secret:s3_key}\"`), or give credentials where the AWS chain looks"
        }
        ErrorKind::PermissionDenied if vault => {
            "run the command in that client's folder, or give this client its own vault \
             (`ferry secrets set NAME` creates one)"
        }
        ErrorKind::PermissionDenied if e.context_value("client").is_some() => {
            "point this config's [destination] at this client's own system, or run the \
             other client's folder (tenant binding: SECURITY.md)"
        }
        // an owner refusal that carries its own way out: no permission is missing
        ErrorKind::PermissionDenied if e.context_value("hint").is_some() => return None,
        // the pipeline's lock (`.ferry/locks/…`): retrying at once would be refused again
        ErrorKind::Temporary if file.ends_with(".lock") => {
            "wait for the run named above to end, or stop it (Ctrl-C in its terminal, or \
             `kill` its pid); a run that dies releases the lock by itself"
        }
        ErrorKind::ConfigInvalid if e.context_value("state").is_some() => {
            "give --stream one of the streams named above, or leave --stream out to act on \
             every stream of the pipeline"
        }
        ErrorKind::NotFound if e.context_value("config").is_some() => {
            "check the path given with -c (default: sync.toml in the current folder); \
             `ferry init <client>` creates a client folder with one"
        }
        ErrorKind::NotFound if e.context_value("pattern").is_some() => {
            "put the client's files in that folder, or change the stream's `path` pattern to \
             where they are; `ferry discover` lists what matches"
        }
        ErrorKind::NotFound if e.context_value("receipts").is_some() => {
            "give the run id a sync printed (`receipt: …/<run id>.json`) or the path of a \
             receipt file; -c names the config whose receipts folder is searched"
        }
        ErrorKind::NotFound if e.context_value("receipt").is_some() => {
            "check the path of the receipt file, or give a run id to find it in the receipts folder"
        }
        ErrorKind::NotFound if !file.is_empty() && e.context_value("stream").is_none() => {
            "check the path, and that Ferry runs in the folder you expect"
        }
        ErrorKind::ConfigInvalid if e.context_value("option") == Some("--streams") => {
            "give --streams names from the list above (comma-separated), or leave --streams \
             out to profile every stream of the config"
        }
        ErrorKind::ConfigInvalid if e.context_value("stream").is_some() => {
            "fix the stream's entry at the line shown; `ferry discover` lists the source's \
             streams, columns and cursors"
        }
        ErrorKind::ConfigInvalid if e.context_value("identity").is_some() => {
            "give an age identity: a file holding `AGE-SECRET-KEY-1…` (`-i key.txt`), or a \
             vault reference such as `${secret:age_identity}` (`ferry keys generate age`)"
        }
        kind => return kind.hint().map(str::to_string),
    };
    Some(h.to_string())
}

/// The exit code for an error that stopped a command.
pub fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::ConfigInvalid => CONFIG,
        ErrorKind::NotFound if e.context_value("config").is_some() => CONFIG,
        // `ferry report`: a run id or receipt path that names nothing
        ErrorKind::NotFound
            if e.context_value("receipts").is_some() || e.context_value("receipt").is_some() =>
        {
            CONFIG
        }
        ErrorKind::Cancelled => 130,
        _ => 1,
    }
}

/// Prints `text` to stdout. A reader that left early (`| head`, `| less` quit) ends
/// the output quietly instead of failing: there is no one left to tell.
pub fn emit(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io(e, "cannot write the output", "stdout"))
        }
        _ => Ok(()),
    }
}

/// Backstop for the `println!`s outside [`emit`]: a closed stdout pipe ends the process
/// quietly with 0 instead of a "Broken pipe" panic.
pub fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
