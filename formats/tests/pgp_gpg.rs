//! Interoperability with GnuPG (`gpg`, Debian package `gnupg`), the tool clients use:
//! `gpg --sign --encrypt` → Ferry decrypts and checks the signature; Ferry encrypts (and
//! signs) → `gpg --decrypt` opens it and reports a good signature. Each party has its own
//! keyring in a temporary `GNUPGHOME`. Then the faults: wrong key, wrong or missing
//! passphrase, altered or truncated files, a missing or foreign signature: each a clear
//! error and no plaintext.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use ferry_core::{ErrorKind, Secret};
use ferry_formats::pgp::{self, Decryptor, Encryptor, PublicKeys, SecretKeys};
use ferry_testkit::gpg::Gpg;

use ferry_testkit::noise as data;

/// Us and a client, each with a keyring; the client knows our public key and we know theirs.
struct Parties {
    us: Gpg,
    client: Gpg,
    our_secret: Secret,
    our_public: String,
    client_public: String,
    client_fp: String,
    passphrase: Option<&'static str>,
}

const US: &str = "ferry@example.com";
const CLIENT: &str = "client@example.com";

fn parties(passphrase: Option<&'static str>) -> Parties {
    let us = Gpg::new();
    let client = Gpg::new();
    us.gen_key(US, passphrase);
    let client_fp = client.gen_key(CLIENT, None);
    let our_public = us.export_public(US);
    let client_public = client.export_public(CLIENT);
    client.import(&our_public);
    us.import(&client_public);
    Parties {
        our_secret: Secret::new(us.export_secret(US, passphrase)),
        us,
        client,
        our_public,
        client_public,
        client_fp,
        passphrase,
    }
}

impl Parties {
    fn decryptor(&self, verify: bool) -> Decryptor {
        let pass = self.passphrase.map(Secret::new);
        let keys = SecretKeys::parse(&self.our_secret, pass.as_ref()).unwrap();
        let verify = verify.then(|| {
            PublicKeys::parse(
                std::slice::from_ref(&self.client_public),
                Path::new("."),
                "pgp_verify_key",
            )
            .unwrap()
        });
        Decryptor::new(keys, verify)
    }

    /// The client encrypts `plain` to us (signed unless `unsigned`); returns the file.
    fn client_sends(
        &self,
        dir: &Path,
        plain: &[u8],
        signed: bool,
        armor: bool,
    ) -> std::path::PathBuf {
        let src = dir.join("orders.csv");
        std::fs::write(&src, plain).unwrap();
        let dst = dir.join(if armor {
            "orders.csv.asc"
        } else {
            "orders.csv.gpg"
        });
        let signer = signed.then_some((CLIENT, None));
        self.client.encrypt(&src, &dst, US, signer, armor);
        dst
    }
}

fn read_all(mut p: pgp::Plaintext) -> Vec<u8> {
    let mut out = Vec::new();
    p.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn gpg_encrypts_and_signs_ferry_decrypts_and_verifies() {
    let p = parties(None);
    let dir = tempfile::tempdir().unwrap();
    let dec = p.decryptor(true);
    for (len, armor) in [
        (0, false),
        (1, true),
        (100_003, false),
        (3 << 20, false),
        (70_000, true),
    ] {
        let plain = data(len, len as u8);
        let file = p.client_sends(dir.path(), &plain, true, armor);
        let out = dec.decrypt(std::fs::File::open(&file).unwrap()).unwrap();
        assert_eq!(out.len(), len as u64);
        assert_eq!(out.signed_by(), Some(p.client_fp.as_str()));
        assert!(
            read_all(out) == plain,
            "{len} bytes, armor {armor}: plaintext differs"
        );
    }
    // without a signature requirement, an unsigned file reads too
    let plain = data(5000, 9);
    let file = p.client_sends(dir.path(), &plain, false, false);
    let out = p
        .decryptor(false)
        .decrypt(std::fs::File::open(&file).unwrap())
        .unwrap();
    assert_eq!(out.signed_by(), None);
    assert_eq!(read_all(out), plain);
}

#[test]
fn a_key_protected_by_a_passphrase_needs_the_right_one() {
    let p = parties(Some("correct horse"));
    let dir = tempfile::tempdir().unwrap();
    let plain = data(10_000, 1);
    let file = p.client_sends(dir.path(), &plain, true, false);
    let out = p
        .decryptor(true)
        .decrypt(std::fs::File::open(&file).unwrap())
        .unwrap();
    assert_eq!(read_all(out), plain);

    let wrong = SecretKeys::parse(&p.our_secret, Some(&Secret::new("battery staple"))).unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::AuthFailed, "{wrong}");
    assert!(wrong.message().contains("wrong passphrase"), "{wrong}");
    assert!(!wrong.to_string().contains("battery"), "{wrong}");
    let missing = SecretKeys::parse(&p.our_secret, None).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::ConfigInvalid, "{missing}");
    assert!(missing.message().contains("pgp_passphrase"), "{missing}");
}

#[test]
fn faults_fail_with_a_clear_error_and_no_plaintext() {
    let p = parties(None);
    let dir = tempfile::tempdir().unwrap();
    let plain = data(300_000, 2);
    let file = p.client_sends(dir.path(), &plain, true, false);
    let bytes = std::fs::read(&file).unwrap();
    let dec = p.decryptor(true);

    // a byte flipped in the middle of the ciphertext
    let mut tampered = bytes.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    let e = dec.decrypt(&tampered[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("damaged, cut short or altered"), "{e}");

    // cut short: at several places
    for cut in [bytes.len() - 1, bytes.len() - 30, bytes.len() / 2, 200, 10] {
        let e = dec.decrypt(&bytes[..cut]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataInvalid, "cut at {cut}: {e}");
    }

    // not OpenPGP at all
    let e = dec.decrypt(&b"id,name\n1,a\n"[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");

    // encrypted to someone else
    let other = Gpg::new();
    other.gen_key("other@example.com", None);
    p.client.import(&other.export_public("other@example.com"));
    let src = dir.path().join("x.csv");
    std::fs::write(&src, &plain).unwrap();
    let dst = dir.path().join("x.csv.gpg");
    p.client
        .encrypt(&src, &dst, "other@example.com", Some((CLIENT, None)), false);
    let e = dec.decrypt(std::fs::File::open(&dst).unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AuthFailed, "{e}");
    assert!(e.message().contains("cannot decrypt the file"), "{e}");

    // unsigned when a signature is required
    let unsigned = p.client_sends(dir.path(), &plain, false, false);
    let e = dec
        .decrypt(std::fs::File::open(&unsigned).unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(e.message().contains("not signed"), "{e}");

    // signed by another key than the client's
    let mallory = Gpg::new();
    mallory.gen_key("mallory@example.com", None);
    mallory.import(&p.our_public);
    let forged = dir.path().join("forged.csv.gpg");
    mallory.encrypt(
        &src,
        &forged,
        US,
        Some(("mallory@example.com", None)),
        false,
    );
    let e = dec
        .decrypt(std::fs::File::open(&forged).unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataInvalid, "{e}");
    assert!(
        e.message()
            .contains("not a valid signature by the client's key"),
        "{e}"
    );

    // the secret key never shows in an error
    assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");
}

#[test]
fn ferry_encrypts_and_signs_gpg_decrypts_and_verifies() {
    let p = parties(Some("s3cret"));
    let dir = tempfile::tempdir().unwrap();
    let signer = SecretKeys::parse(&p.our_secret, Some(&Secret::new("s3cret"))).unwrap();
    for armor in [false, true] {
        let enc = Encryptor::from_entries(
            std::slice::from_ref(&p.client_public),
            Path::new("."),
            "pgp_recipients",
            Some(SecretKeys::parse(&p.our_secret, Some(&Secret::new("s3cret"))).unwrap()),
            armor,
        )
        .unwrap();
        let enc = Arc::new(enc);
        for len in [0usize, 1, 65_536, 1_000_003] {
            let plain = data(len, 7);
            let path = dir.path().join(format!("out.csv.{}", enc.extension()));
            let file = std::fs::File::create(&path).unwrap();
            let mut w = pgp::encrypt_writer(&enc, "out.csv", file).unwrap();
            // odd-sized writes, as a format writer makes them
            for chunk in plain.chunks(7919) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap().sync_all().unwrap();
            let (got, stderr) = p
                .client
                .decrypt(&path)
                .unwrap_or_else(|e| panic!("gpg -d: {e}"));
            assert!(
                got == plain,
                "{len} bytes, armor {armor}: gpg's plaintext differs"
            );
            assert!(
                stderr.contains("Good signature from \"ferry@example.com"),
                "{stderr}"
            );
            // and Ferry reads its own delivery back
            let back = Decryptor::new(
                SecretKeys::parse(&Secret::new(p.client.export_secret(CLIENT, None)), None)
                    .unwrap(),
                Some(
                    PublicKeys::parse(std::slice::from_ref(&p.our_public), Path::new("."), "k")
                        .unwrap(),
                ),
            );
            assert_eq!(
                read_all(back.decrypt(std::fs::File::open(&path).unwrap()).unwrap()),
                plain
            );
        }
    }
    drop(signer);
    // a writer dropped before `finish` leaves a file gpg refuses
    let enc = Arc::new(
        Encryptor::from_entries(
            std::slice::from_ref(&p.client_public),
            Path::new("."),
            "r",
            None,
            false,
        )
        .unwrap(),
    );
    let path = dir.path().join("cut.csv.gpg");
    {
        let mut w =
            pgp::encrypt_writer(&enc, "cut.csv", std::fs::File::create(&path).unwrap()).unwrap();
        w.write_all(&data(1_500_000, 3)).unwrap();
    }
    let e = p
        .client
        .decrypt(&path)
        .map(|(plain, err)| (plain.len(), err));
    assert!(e.is_err(), "an abandoned delivery decrypted: {e:?}");
    let _ = &p.us;
}

#[test]
fn rsa_keys_work_both_ways() {
    let us = Gpg::new();
    let client = Gpg::new();
    us.gen_rsa_key(US, 3072);
    client.gen_rsa_key(CLIENT, 3072);
    client.import(&us.export_public(US));
    let dir = tempfile::tempdir().unwrap();
    let plain = data(123_457, 4);
    let src = dir.path().join("a.csv");
    std::fs::write(&src, &plain).unwrap();
    let dst = dir.path().join("a.csv.gpg");
    client.encrypt(&src, &dst, US, Some((CLIENT, None)), false);
    let dec = Decryptor::new(
        SecretKeys::parse(&Secret::new(us.export_secret(US, None)), None).unwrap(),
        Some(PublicKeys::parse(&[client.export_public(CLIENT)], Path::new("."), "k").unwrap()),
    );
    assert_eq!(
        read_all(dec.decrypt(std::fs::File::open(&dst).unwrap()).unwrap()),
        plain
    );

    let enc = Arc::new(
        Encryptor::from_entries(
            &[client.export_public(CLIENT)],
            Path::new("."),
            "r",
            None,
            false,
        )
        .unwrap(),
    );
    let out = dir.path().join("b.csv.gpg");
    let mut w = pgp::encrypt_writer(&enc, "b.csv", std::fs::File::create(&out).unwrap()).unwrap();
    w.write_all(&plain).unwrap();
    w.finish().unwrap();
    assert_eq!(client.decrypt(&out).unwrap().0, plain);
}

#[test]
fn key_files_and_mistakes_in_key_settings() {
    let p = parties(None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.asc"), &p.client_public).unwrap();
    let binary = p.client.ok(&["--export", CLIENT]);
    std::fs::write(dir.path().join("client.gpg"), binary).unwrap();
    for entry in ["client.asc", "file:client.asc", "file:client.gpg"] {
        let k = PublicKeys::parse(&[entry.to_string()], dir.path(), "pgp_recipients").unwrap();
        assert_eq!(k.fingerprints(), vec![p.client_fp.clone()], "{entry}");
    }
    // a secret key where a public key belongs: refused, and not shown
    let e = PublicKeys::parse(
        &[p.our_secret.expose().to_string()],
        dir.path(),
        "pgp_recipients",
    )
    .unwrap_err();
    assert!(e.message().contains("is a secret key"), "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY BLOCK"), "{e}");
    // a public key where our secret key belongs
    let e = SecretKeys::parse(&Secret::new(p.our_public.clone()), None).unwrap_err();
    assert!(e.message().contains("public key block"), "{e}");
    // a missing file, a file that is not a key
    let e = PublicKeys::parse(&["nope.asc".into()], dir.path(), "pgp_recipients").unwrap_err();
    assert!(
        e.message()
            .contains("neither an armored public key block nor an existing key file"),
        "{e}"
    );
    std::fs::write(dir.path().join("junk.asc"), "hello").unwrap();
    let e = PublicKeys::parse(&["junk.asc".into()], dir.path(), "pgp_recipients").unwrap_err();
    assert!(e.message().contains("is not an OpenPGP public key"), "{e}");
    // garbage as our secret key: an error that does not echo it
    let e = SecretKeys::parse(
        &Secret::new("-----BEGIN PGP PRIVATE KEY BLOCK-----\nzzzz\n"),
        None,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("zzzz"), "{e}");
}
