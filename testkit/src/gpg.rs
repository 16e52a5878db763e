//! GnuPG (`gpg`, Debian package `gnupg`) as a client uses it, for OpenPGP interop tests: a
//! throwaway keyring (`GNUPGHOME` in a temporary folder), keys made and exported with
//! `gpg`, files encrypted and decrypted with `gpg`. Fails, never skips, when `gpg` is
//! missing, saying how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MISSING: &str = "the `gpg` command is missing: apt-get install gnupg";

/// A GnuPG home of its own, deleted when dropped (with its agent).
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Default for Gpg {
    fn default() -> Self {
        Gpg::new()
    }
}

impl Gpg {
    /// A fresh, empty keyring.
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("temporary GNUPGHOME");
        // short for gpg-agent's socket path; private as gpg wants
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
                .expect("chmod GNUPGHOME");
        }
        // allow a passphrase given on the command line (`--pinentry-mode loopback`)
        std::fs::write(
            home.path().join("gpg-agent.conf"),
            "allow-loopback-pinentry\n",
        )
        .expect("gpg-agent.conf");
        Gpg { home }
    }

    /// The `GNUPGHOME` folder.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs `gpg --batch` with `args` in this home; returns its output, whatever the exit.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .arg("--batch")
            .arg("--no-tty")
            .args(args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{MISSING}"),
            Err(e) => panic!("cannot run gpg: {e}"),
        }
    }

    /// Runs `gpg` and asserts it succeeded; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`gpg {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Makes a key pair for `uid` (an e-mail address), protected by `passphrase` when
    /// given (ed25519 for signing, cv25519 for encryption: GnuPG's `future-default`, the
    /// default of GnuPG 2.3 and later); returns its fingerprint.
    pub fn gen_key(&self, uid: &str, passphrase: Option<&str>) -> String {
        self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase.unwrap_or(""),
            "--quick-gen-key",
            uid,
            "future-default",
            "default",
            "never",
        ]);
        self.fingerprint(uid)
    }

    /// Makes an RSA key pair for `uid` (`bits` e.g. 3072: a signing primary key and an
    /// encryption subkey), without passphrase; returns its fingerprint.
    pub fn gen_rsa_key(&self, uid: &str, bits: u32) -> String {
        let algo = format!("rsa{bits}");
        self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            &algo,
            "sign,cert",
            "never",
        ]);
        let fp = self.fingerprint(uid);
        self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-add-key",
            &fp,
            &algo,
            "encr",
            "never",
        ]);
        fp
    }

    /// The fingerprint of the primary key of `uid`.
    pub fn fingerprint(&self, uid: &str) -> String {
        let out = String::from_utf8(self.ok(&["--with-colons", "--list-keys", uid])).unwrap();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("a fingerprint in gpg --list-keys")
            .to_string()
    }

    /// The armored public key of `uid` (`gpg --export --armor`).
    pub fn export_public(&self, uid: &str) -> String {
        String::from_utf8(self.ok(&["--armor", "--export", uid])).unwrap()
    }

    /// The armored secret key of `uid` (`gpg --export-secret-keys --armor`), still protected
    /// by its passphrase, if any.
    pub fn export_secret(&self, uid: &str, passphrase: Option<&str>) -> String {
        String::from_utf8(self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase.unwrap_or(""),
            "--armor",
            "--export-secret-keys",
            uid,
        ]))
        .unwrap()
    }

    /// Imports an armored key (public or secret) into this keyring.
    pub fn import(&self, armored: &str) {
        let file = self.home.path().join("import.asc");
        std::fs::write(&file, armored).unwrap();
        self.ok(&["--import", file.to_str().unwrap()]);
        std::fs::remove_file(file).unwrap();
    }

    /// Encrypts `src` to `dst` for `recipient` (trusted as is), signed by `signer` when
    /// given (its passphrase `signer_pass`), armored when `armor`.
    pub fn encrypt(
        &self,
        src: &Path,
        dst: &Path,
        recipient: &str,
        signer: Option<(&str, Option<&str>)>,
        armor: bool,
    ) {
        let mut args: Vec<String> = vec![
            "--yes".into(),
            "--trust-model".into(),
            "always".into(),
            "--pinentry-mode".into(),
            "loopback".into(),
            "--output".into(),
            path(dst),
            "--recipient".into(),
            recipient.into(),
        ];
        if armor {
            args.push("--armor".into());
        }
        if let Some((uid, pass)) = signer {
            args.extend([
                "--local-user".into(),
                uid.into(),
                "--passphrase".into(),
                pass.unwrap_or("").into(),
                "--sign".into(),
            ]);
        }
        args.extend(["--encrypt".into(), path(src)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
    }

    /// Decrypts `src` (`gpg --decrypt`), returning the plaintext and gpg's stderr (which
    /// names a good signature), or gpg's stderr on failure.
    pub fn decrypt(&self, src: &Path) -> Result<(Vec<u8>, String), String> {
        let out = self.run(&[
            "--trust-model",
            "always",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--decrypt",
            &path(src),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.success() {
            Ok((out.stdout, stderr))
        } else {
            Err(stderr)
        }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // the agent this home started would otherwise outlive the test
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn path(p: &Path) -> String {
    PathBuf::from(p).to_str().expect("UTF-8 path").to_string()
}
