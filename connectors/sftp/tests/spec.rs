//! `ferry spec sftp`: every field documented with its default, secrets as references, and
//! no way to switch host-key checking off.

#[test]
fn the_config_documents_itself_and_offers_no_way_around_the_host_key() {
    let spec = ferry_testkit::documented_source_and_sink(
        ferry_connector_sftp::register,
        "sftp",
        &[
            "host",
            "port",
            "user",
            "password",
            "private_key",
            "private_key_passphrase",
            "host_key",
            "known_hosts",
            "path",
            "format",
            "compression",
        ],
    );
    for side in ["source", "destination"] {
        let props = spec[side]["properties"].as_object().unwrap();
        for secret in ["password", "private_key", "private_key_passphrase"] {
            let text = props[secret].to_string();
            assert!(
                text.contains("#/$defs/Secret"),
                "{side}.{secret} is a Secret: {text}"
            );
        }
        // `pgp_verify_key` checks the signature of a client's OpenPGP file, not the host
        for name in props.keys().filter(|n| *n != "pgp_verify_key") {
            let n = name.to_ascii_lowercase();
            assert!(
                !(n.contains("insecure")
                    || n.contains("strict")
                    || n.contains("accept")
                    || n.contains("verify")),
                "{side}.{name} looks like a way to skip host-key checking"
            );
        }
        let required: Vec<&str> = spec[side]["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(
            required.contains(&"host") && required.contains(&"user"),
            "{side}: {required:?}"
        );
    }
    for shared in [
        "identity",
        "encoding",
        "decimal_separator",
        "sheet",
        "inner",
        "after_read",
        "archive_to",
        "newest_only",
        "name_date",
        "pgp_secret_key",
        "pgp_verify_key",
    ] {
        assert!(
            spec["source"]["properties"].get(shared).is_some(),
            "source.{shared} missing"
        );
    }
    // the shared docs name what this store holds
    let encoding = spec["source"]["properties"]["encoding"].to_string();
    assert!(
        encoding.contains("rejected with its file and line"),
        "{encoding}"
    );
    let file_column = spec["source"]["properties"]["file_column"].to_string();
    assert!(file_column.contains("sftp://host/path"), "{file_column}");
    assert!(spec["destination"]["properties"].get("encrypt").is_some());
}
