//! `ferry` with the `sftp` connector both ends, against a real sshd (the kit's): logins from
//! the vault, a client's CSV drop read and delivered back age-encrypted under a temp name,
//! the receipt verified by downloading the delivery again, and a wrong host key refused
//! naming its fingerprint; `append` delivering a new file per run, each receipt verifying
//! its own.

mod support;

use std::path::Path;
use std::process::Output;

use ferry_testkit::sftp_server::{KeyKind, SftpServer, PASSWORD, USER};
use support::cli::{exits_saying, ferry_in, out, Setup, MASTER_KEY};
use support::folder::{copy_from_repo, with_config};
use support::read::only_receipt;

fn ferry(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    ferry_in(dir).master_key(MASTER_KEY).run(args, stdin)
}

fn sync_toml(server: &SftpServer, host_key: &str, recipient: &str) -> String {
    // both ends log in to the same server, one by password, one by key
    let login = |auth: &str| {
        format!(
            "type = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n{auth}\nhost_key = \"{host_key}\"",
            server.port()
        )
    };
    format!(
        "client = \"acme\"
[source]
{}
path = \"outgoing/*.csv\"
stream = \"customers\"

[destination]
{}
path = \"incoming\"
encrypt = {{ recipients = [\"{recipient}\"] }}

[[streams]]
name = \"customers\"
mode = \"overwrite\"
",
        login("password = \"${secret:acme_sftp_password}\""),
        login("private_key = \"${secret:acme_sftp_key}\""),
    )
}

/// Puts both logins in the vault and makes a signing key; returns its public half.
fn logins_and_signing_key(dir: &Path, private_key: &str) -> String {
    for (name, value) in [
        ("acme_sftp_password", PASSWORD),
        ("acme_sftp_key", private_key),
    ] {
        let o = ferry(dir, &["secrets", "set", name], Some(value));
        assert!(o.status.success(), "{}", out(&o));
    }
    let o = ferry(dir, &["keys", "generate", "signing"], None);
    assert!(o.status.success(), "{}", out(&o));
    support::cli::last_line(&o)
}

/// `ferry verify` of `receipt` downloads its SFTP delivery again and finds it as signed.
fn verifies(dir: &Path, receipt: &str, public: &str) {
    let o = ferry(
        dir,
        &["verify", receipt, "--pubkey", public, "-c", "sync.toml"],
        None,
    );
    exits_saying(&o, 0, "ok         sftp sftp://");
}

#[test]
fn a_client_drop_is_read_and_delivered_back_encrypted_then_verified() {
    let server = SftpServer::start();
    let drop = std::fs::read(support::folder::repo("examples/quickstart/customers.csv")).unwrap();
    server.put("outgoing/customers.csv", &drop);
    let key = server.user_key(KeyKind::Ed25519, "");
    let (identity, recipient) = ferry_formats::age::generate_identity();
    let tmp = with_config(&sync_toml(&server, server.host_key(), &recipient));
    let dir = tmp.path();
    copy_from_repo("examples/quickstart/customers.csv", dir, "local.csv");
    let public = logins_and_signing_key(dir, &key.private);
    let o = ferry(dir, &["check"], None);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["sync"], None);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!out(&o).contains(PASSWORD), "{}", out(&o));

    // the delivery: whole, encrypted to the client, no temp file left
    let incoming = server.root().join("incoming");
    let names: Vec<String> = std::fs::read_dir(&incoming)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["customers.csv.age"]);
    let sealed = std::fs::read(incoming.join("customers.csv.age")).unwrap();
    let ids = ferry_formats::age::Identities::parse(&identity).unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut ferry_formats::age::decrypt_reader(&ids, std::io::Cursor::new(sealed)).unwrap(),
        &mut plain,
    )
    .unwrap();
    let source_rows = String::from_utf8(drop).unwrap().lines().count();
    assert_eq!(plain.lines().count(), source_rows, "{plain}");

    // the receipt names it by URL and `ferry verify` downloads it again
    let receipt = only_receipt(dir);
    let r = receipt.to_str().unwrap();
    let text = std::fs::read_to_string(&receipt).unwrap();
    assert!(
        text.contains(&format!(
            "sftp://127.0.0.1:{}/incoming/customers.csv.age",
            server.port()
        )),
        "{text}"
    );
    verifies(dir, r, &public);
    std::fs::write(incoming.join("customers.csv.age"), b"tampered").unwrap();
    let o = ferry(
        dir,
        &["verify", r, "--pubkey", &public, "-c", "sync.toml"],
        None,
    );
    assert!(
        !o.status.success(),
        "a changed delivery must not verify: {}",
        out(&o)
    );
    assert!(
        out(&o).contains("CHANGED") || out(&o).to_lowercase().contains("changed"),
        "{}",
        out(&o)
    );
}

#[test]
fn a_wrong_host_key_stops_the_run_naming_the_presented_fingerprint() {
    let server = SftpServer::start();
    server.put("outgoing/customers.csv", b"id\n1\n");
    let other = SftpServer::start();
    let (_, recipient) = ferry_formats::age::generate_identity();
    let tmp = with_config(&sync_toml(&server, other.host_key(), &recipient));
    let dir = tmp.path();
    let o = ferry(
        dir,
        &["secrets", "set", "acme_sftp_password"],
        Some(PASSWORD),
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["secrets", "set", "acme_sftp_key"], Some("unused"));
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["sync"], None);
    assert!(!o.status.success());
    let text = out(&o);
    assert!(
        text.contains("presented host key ssh-ed25519 SHA256:"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        !server.log().contains("password for"),
        "no credential was sent: {}",
        server.log()
    );
}

#[test]
fn append_delivers_a_new_file_each_run_and_each_receipt_verifies_its_own() {
    let server = SftpServer::start();
    server.put("outgoing/customers.csv", b"id,name\n1,a\n2,b\n");
    let key = server.user_key(KeyKind::Ed25519, "");
    let (_, recipient) = ferry_formats::age::generate_identity();
    let toml = sync_toml(&server, server.host_key(), &recipient)
        .replace("mode = \"overwrite\"", "mode = \"append\"");
    let tmp = with_config(&toml);
    let dir = tmp.path();
    let public = logins_and_signing_key(dir, &key.private);
    let incoming = server.root().join("incoming");
    let mut delivered = Vec::new();
    for run in 1..=2 {
        let o = ferry(dir, &["sync"], None);
        assert!(o.status.success(), "{}", out(&o));
        let mut names: Vec<String> = std::fs::read_dir(&incoming)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names.len(),
            run,
            "a new file each run, no temp file: {names:?}"
        );
        let new: Vec<String> = names
            .into_iter()
            .filter(|n| !delivered.contains(n))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        assert!(
            new[0].starts_with("customers-") && new[0].ends_with(".csv.age"),
            "{new:?}"
        );
        delivered.push(new[0].clone());
        // the run's receipt names the file it delivered, and verify downloads it again
        let url = format!("sftp://127.0.0.1:{}/incoming/{}", server.port(), new[0]);
        let receipts = support::read::receipts(dir);
        assert_eq!(receipts.len(), run);
        let naming: Vec<_> = receipts
            .iter()
            .filter(|r| std::fs::read_to_string(r).unwrap().contains(&url))
            .collect();
        assert_eq!(naming.len(), 1, "one receipt names {url}: {receipts:?}");
        let r = naming[0].to_str().unwrap();
        verifies(dir, r, &public);
    }
}
