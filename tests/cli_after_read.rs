//! `after_read = "archive"` as a user runs it: `ferry sync` moves each file read to the
//! archive folder once its rows and state are committed, and says so in its summary; a
//! trial (`--limit`) and a dry run leave every file where it was.

mod support;

use support::cli::{ferry, out_split as text, words};
use support::folder;

const SYNC: &str = "[source]\ntype = \"file\"\npath = \"in/orders_*.csv\"\nafter_read = \"archive\"\n\n[destination]\ntype = \"file\"\npath = \"out\"\n\n[[streams]]\nname = \"orders\"\nincremental = true\n";

#[test]
fn sync_archives_what_it_committed_and_says_so() {
    let tmp = folder::with_config(SYNC);
    let dir = tmp.path();
    std::fs::create_dir(dir.join("in")).unwrap();
    folder::write(dir, "in/orders_1.csv", "id,v\n1,a\n2,b\n");
    folder::write(dir, "in/orders_2.csv", "id,v\n3,c\n");

    for trial in ["sync -c sync.toml --limit 1", "sync -c sync.toml --dry-run"] {
        let o = ferry(dir, &words(trial));
        assert!(o.status.success(), "{trial}: {:?}", text(&o));
        assert!(dir.join("in/orders_1.csv").exists(), "{trial} moved a file");
        assert!(!text(&o).0.contains("archived"), "{trial}: {:?}", text(&o));
    }

    let o = ferry(dir, &words("sync -c sync.toml --report r.json"));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("orders: in/orders_1.csv archived to in/processed/orders_1.csv")
            && out.contains("orders: in/orders_2.csv archived to in/processed/orders_2.csv"),
        "{out}"
    );
    assert!(!dir.join("in/orders_1.csv").exists());
    assert!(dir.join("in/processed/orders_2.csv").exists());
    let report = support::read::json(&dir.join("r.json"));
    let settled = &support::read::stream(&report, "orders")["settled"];
    assert_eq!(settled.as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/orders.csv")).unwrap(),
        "id,v\n1,a\n2,b\n3,c\n"
    );

    // the drop folder is empty: the next run succeeds and reads nothing
    let o = ferry(dir, &words("sync -c sync.toml"));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("0 rows read"), "{out}");
}

#[test]
fn init_and_spec_document_the_new_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ferry(tmp.path(), &["init", "globex", "--dir", "globex"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let cfg = std::fs::read_to_string(tmp.path().join("globex/sync.toml")).unwrap();
    for line in [
        "# after_read = \"leave\"\n",
        "# archive_to = \"processed\"\n",
        "# newest_only = false\n",
        "# name_date = ",
    ] {
        assert!(cfg.contains(line), "{line}: {cfg}");
    }
    let o = ferry(tmp.path(), &["spec", "file"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("after_read") && out.contains("name_date_column"),
        "{out}"
    );
}
