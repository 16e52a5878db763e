//! Logging in to a real sshd: passwords, private keys in the OpenSSH and PEM formats
//! with and without passphrases, and the host key pinned (`host_key` or `known_hosts`),
//! a mismatch refused naming the fingerprint the server presented.

mod common;

use std::path::Path;

use common::{login, source, source_at, KeyKind, SftpServer, PASSWORD, USER};
use ferry_core::ErrorKind;

/// A source of `server` logging in with `credentials` (TOML lines), pinned to its key.
fn with(server: &SftpServer, credentials: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n{credentials}\nhost_key = \"{}\"\npath = \"in/*.csv\"\n",
        server.port(),
        server.host_key()
    )
}

/// The error `check` of the source `toml` fails with; relative paths are under `dir`.
async fn refused(toml: &str, dir: &Path) -> ferry_core::Error {
    source_at(toml, dir).unwrap().check().await.unwrap_err()
}

/// Writes `text` to a fresh file and returns `${file:…}` of it.
fn file_ref(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    format!("${{file:{}}}", path.display())
}

/// A server holding one small CSV file, `in/a.csv`.
fn one_file_server() -> SftpServer {
    let server = SftpServer::start();
    server.put("in/a.csv", b"id\n1\n");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_reads_a_file() {
    let server = SftpServer::start();
    server.put("in/a.csv", b"id,name\n1,ann\n2,bob\n");
    let src = source(&login(&server, "path = \"in/*.csv\"")).unwrap();
    src.check().await.unwrap();
    let batches = ferry_testkit::read_all(src.as_ref(), ferry_core::ReadRequest::full("in")).await;
    assert_eq!(ferry_testkit::ids(&batches), vec![1, 2]);
    assert!(
        server.log().contains("Accepted password for ferrytest"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_in_openssh_and_pem_formats_log_in_with_and_without_passphrases() {
    let server = one_file_server();
    let dir = tempfile::tempdir().unwrap();
    for (kind, passphrase) in [
        (KeyKind::Ed25519, ""),
        (KeyKind::Ed25519, "correct horse"),
        (KeyKind::RsaOpenssh, "battery staple"),
        (KeyKind::RsaPem, ""),
        (KeyKind::RsaPem, "pem pass"),
        (KeyKind::EcdsaPem, "ec pass"),
    ] {
        let key = server.user_key(kind, passphrase);
        let mut creds = format!(
            "private_key = \"{}\"",
            file_ref(&dir, &format!("{kind:?}{}", passphrase.len()), &key.private)
        );
        if !passphrase.is_empty() {
            creds.push_str(&format!("\nprivate_key_passphrase = \"{passphrase}\""));
        }
        let src = source(&with(&server, &creds)).unwrap();
        src.check().await.unwrap_or_else(|e| {
            panic!(
                "{kind:?} key (passphrase {passphrase:?}): {e}\n{}",
                server.log()
            )
        });
        assert!(
            server.log().contains("Accepted publickey for ferrytest"),
            "sshd did not log a key login: {}",
            server.log()
        );
        if !passphrase.is_empty() {
            // the same key with a wrong passphrase is refused, saying so
            let creds = creds.replace(passphrase, "wrong");
            let e = refused(&with(&server, &creds), Path::new(".")).await;
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{kind:?}: {e}");
            assert!(e.to_string().contains("passphrase"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_as_auth_failed_without_showing_it() {
    let server = one_file_server();
    let src = source(&with(&server, "password = \"not-the-password\"")).unwrap();
    let e = src.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("refused user `ferrytest` with its password"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    // and the right one passes
    let ok = source(&with(&server, &format!("password = \"{PASSWORD}\""))).unwrap();
    ok.check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_presenting_another_host_key_is_refused_naming_its_fingerprint() {
    let server = SftpServer::start();
    let other = SftpServer::start();
    // `server`'s key pinned, `other` answering
    let toml = format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nhost_key = \"{}\"\npath = \"in/*.csv\"\n",
        other.port(),
        server.host_key()
    );
    let e = source(&toml).unwrap().check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    // the fingerprint as `ssh-keygen -l` prints it for the presented key
    let dir = tempfile::tempdir().unwrap();
    let pub_file = dir.path().join("other.pub");
    std::fs::write(&pub_file, other.host_key()).unwrap();
    let keygen = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&pub_file)
        .output()
        .unwrap();
    let printed = String::from_utf8(keygen.stdout).unwrap();
    let fingerprint = printed.split_whitespace().nth(1).unwrap();
    assert!(fingerprint.starts_with("SHA256:"), "{printed}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("ssh-ed25519 {fingerprint}")),
        "{text}"
    );
    assert!(text.contains("`host_key`"), "{text}");
    // no password was sent to the impostor
    assert!(
        !other.log().contains("password for"),
        "a credential reached the wrong server: {}",
        other.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_hosts_files_pin_the_key_too() {
    let server = one_file_server();
    let dir = tempfile::tempdir().unwrap();
    let toml = |file: &str| {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nknown_hosts = \"{file}\"\npath = \"in/*.csv\"\n",
            server.port()
        )
    };
    std::fs::write(dir.path().join("good"), server.known_hosts_line() + "\n").unwrap();
    // hashed by ssh-keygen, as `HashKnownHosts yes` writes them
    std::fs::write(dir.path().join("hashed"), server.known_hosts_line() + "\n").unwrap();
    let hashed = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(dir.path().join("hashed"))
        .output()
        .unwrap();
    assert!(hashed.status.success());
    assert!(std::fs::read_to_string(dir.path().join("hashed"))
        .unwrap()
        .starts_with("|1|"));
    for file in ["good", "hashed"] {
        source_at(&toml(file), dir.path())
            .unwrap()
            .check()
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let other = SftpServer::start();
    let wrong = format!("[127.0.0.1]:{} {}\n", server.port(), other.host_key());
    std::fs::write(dir.path().join("wrong"), wrong).unwrap();
    let e = refused(&toml("wrong"), dir.path()).await;
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(e.to_string().contains("known_hosts"), "{e}");
    std::fs::write(
        dir.path().join("none"),
        "other.example ".to_string() + server.host_key(),
    )
    .unwrap();
    let e = refused(&toml("none"), dir.path()).await;
    assert!(
        e.to_string().contains("has no key for `[127.0.0.1]:"),
        "{e}"
    );
}

#[test]
fn a_config_without_a_host_key_pin_is_refused() {
    let toml = format!("host = \"h\"\nuser = \"u\"\npassword = \"{PASSWORD}\"\npath = \"*.csv\"\n");
    let e = source(&toml).err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(
        e.to_string()
            .contains("never accepts an unknown server key"),
        "{e}"
    );
}
