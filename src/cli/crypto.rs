//! `ferry encrypt` and `ferry decrypt`: one file (or standard input/output) in the
//! standard age v1 format, thin over [`ferry_core::age`], so a person can seal a file for
//! a client, or open one a client sent, with the same keys the file connector uses.
//!
//! Files are written to a temporary file beside the output and renamed into place only
//! on success: a failed decryption never leaves a plaintext file. On standard output
//! plaintext is released chunk by chunk as it is authenticated (as `age -d` does), so a
//! consumer must check the exit status: a damaged or truncated file ends with an error.

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use ferry_core::{Error, Result, Secret};
use ferry_formats::age::{self, Identities, Recipients};

/// Encrypts `input` (standard input when `None`) for `recipients` (`age1…` public keys,
/// or `file:<path>` / paths of recipients files, relative to `base_dir`) into `output`
/// (standard output when `None`, refused on a terminal).
pub fn encrypt(
    input: Option<&Path>,
    output: Option<&Path>,
    recipients: &[String],
    base_dir: &Path,
) -> Result<()> {
    let recipients = Recipients::parse(recipients, base_dir)?;
    match (input, output) {
        (Some(src), Some(dst)) => age::encrypt_file(src, dst, &recipients).map(drop),
        (None, Some(dst)) => age::encrypt_to_file(io::stdin().lock(), dst, &recipients).map(drop),
        (input, None) => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                return Err(Error::config(
                    "refusing to write an encrypted file to the terminal: give an output file, or redirect standard output",
                ));
            }
            let mut reader = open(input)?;
            let mut w = age::encrypt_writer(&recipients, BufWriter::new(stdout.lock()))?;
            age::copy(&mut reader, &mut w, input, None)?;
            w.finish()?.flush().map_err(stdout_error)
        }
    }
}

/// Decrypts the age file `input` (standard input when `None`) with `identity` (one or
/// more `AGE-SECRET-KEY-1…` lines) into `output` (standard output when `None`).
pub fn decrypt(input: Option<&Path>, output: Option<&Path>, identity: &Secret) -> Result<()> {
    let identities = Identities::parse(identity)?;
    match (input, output) {
        (Some(src), Some(dst)) => age::decrypt_file(src, dst, &identities).map(drop),
        (None, Some(dst)) => age::decrypt_to_file(io::stdin().lock(), dst, &identities).map(drop),
        (input, None) => {
            let reader = open(input)?;
            let mut plain = age::decrypt_reader(&identities, reader).map_err(|e| match input {
                Some(src) => e.with("file", src.display()),
                None => e,
            })?;
            let mut out = BufWriter::new(io::stdout().lock());
            age::copy(&mut plain, &mut out, input, None)?;
            out.flush().map_err(stdout_error)
        }
    }
}

/// The file at `path`, or standard input.
fn open(path: Option<&Path>) -> Result<Box<dyn Read>> {
    Ok(match path {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| Error::io(e, "cannot open", p))?),
        None => Box::new(io::stdin().lock()),
    })
}

fn stdout_error(e: io::Error) -> Error {
    Error::new(
        ferry_core::ErrorKind::Io,
        format!("cannot write to standard output: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_files_round_trip_and_a_wrong_key_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (secret, public) = age::generate_identity();
        std::fs::write(d.join("client.pub"), format!("{public}\n")).unwrap();
        std::fs::write(d.join("rows.csv"), "id\n1\n2\n").unwrap();
        let (sealed, plain) = (d.join("rows.csv.age"), d.join("back.csv"));
        encrypt(
            Some(&d.join("rows.csv")),
            Some(&sealed),
            &["file:client.pub".to_string()],
            d,
        )
        .unwrap();
        decrypt(Some(&sealed), Some(&plain), &secret).unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "id\n1\n2\n");

        let (other, _) = age::generate_identity();
        let none = d.join("none.csv");
        let err = decrypt(Some(&sealed), Some(&none), &other).unwrap_err();
        assert_eq!(err.kind(), ferry_core::ErrorKind::AuthFailed, "{err}");
        assert!(err.to_string().contains("rows.csv.age"), "{err}");
        assert!(!none.exists());
        let err = encrypt(Some(&plain), Some(&none), &["nope".to_string()], d).unwrap_err();
        assert_eq!(err.kind(), ferry_core::ErrorKind::ConfigInvalid, "{err}");
    }
}
