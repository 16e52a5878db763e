//! Every format, compression and age encryption through a real sshd, both ways: what the
//! destination delivers, the source reads back with the same values (encrypted Parquet
//! by random access over SFTP, decrypted chunk by chunk); and `ferry verify` of a
//! delivered file (same, changed, missing).

mod common;

use common::{login, sink, source, SftpServer};
use ferry_core::{OutputRef, ReadRequest, Verdict, WriteMode};
use ferry_formats::age;
use ferry_testkit::{self as testkit, all_types_batch, Fidelity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_files_read_back_with_the_same_values_in_every_format_and_layer() {
    let server = SftpServer::start();
    let (identity, public) = age::generate_identity();
    let batch = all_types_batch();
    for (format, compression, encrypted) in [
        ("csv", "gzip", true),
        ("jsonl", "zstd", true),
        ("parquet", "none", true),
        ("parquet", "none", false),
        ("csv", "none", false),
    ] {
        let stream = testkit::fresh_name("orders");
        let mut dest = format!("path = \"exchange/{stream}\"\nformat = \"{format}\"\ncompression = \"{compression}\"\n");
        if encrypted {
            dest.push_str(&format!("encrypt = {{ recipients = [\"{public}\"] }}\n"));
        }
        let s = sink(&login(&server, &dest)).unwrap();
        let mut w = s
            .open(testkit::request(
                &stream,
                batch.schema(),
                WriteMode::Overwrite,
            ))
            .await
            .unwrap();
        w.write(batch.clone()).await.unwrap();
        let summary = w.close().await.unwrap();
        let location = &summary.outputs[0].location;
        let ext = match (format, compression) {
            (f, "none") => f.to_string(),
            (f, "gzip") => format!("{f}.gz"),
            (f, _) => format!("{f}.zst"),
        };
        let name = format!(
            "exchange/{stream}/{stream}.{ext}{}",
            if encrypted { ".age" } else { "" }
        );
        assert!(location.ends_with(&name), "{location} names {name}");
        assert!(server.root().join(&name).exists());
        let mut src = format!(
            "path = \"exchange/{stream}/*\"\nstream = \"{stream}\"\nformat = \"{format}\"\ncolumns = {}\n",
            testkit::columns_toml(&batch.schema())
        );
        if encrypted {
            src.push_str(&format!("identity = \"{}\"\n", identity.expose()));
        }
        let src = source(&login(&server, &src)).unwrap();
        let got = testkit::read_all(src.as_ref(), ReadRequest::full(&stream)).await;
        let fid = Fidelity {
            empty_string_is_null: format == "csv",
            typed: true,
        };
        let case = format!("{format}/{compression}/encrypted {encrypted}");
        testkit::assert_same_rows(&got, &batch, fid, &case);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_files_are_verified_against_their_receipt() {
    let server = SftpServer::start();
    let s = sink(&login(&server, "path = \"out\"")).unwrap();
    let batch = all_types_batch();
    let mut w = s
        .open(testkit::request("v", batch.schema(), WriteMode::Overwrite))
        .await
        .unwrap();
    w.write(batch).await.unwrap();
    let out = w.close().await.unwrap().outputs.remove(0);
    assert_eq!(out.kind, "sftp");
    let bytes = std::fs::read(server.root().join("out/v.csv")).unwrap();
    assert_eq!(out.bytes, Some(bytes.len() as u64));
    let reference = OutputRef {
        kind: out.kind.clone(),
        location: out.location.clone(),
        // as `ferry verify` passes it: the hex of `sha256:<hex>`
        sha256: out
            .digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
            .map(str::to_string),
        bytes: out.bytes,
    };
    assert_eq!(
        s.verify_output(&reference).await.unwrap(),
        Some(Verdict::Same)
    );
    std::fs::write(server.root().join("out/v.csv"), b"id\n1\n").unwrap();
    assert_eq!(
        s.verify_output(&reference).await.unwrap(),
        Some(Verdict::Changed)
    );
    std::fs::remove_file(server.root().join("out/v.csv")).unwrap();
    assert_eq!(
        s.verify_output(&reference).await.unwrap(),
        Some(Verdict::Missing)
    );
    let other = OutputRef {
        kind: "object".into(),
        ..reference
    };
    assert_eq!(s.verify_output(&other).await.unwrap(), None);
}
