//! The personal-data guard, as a user meets it: `[run] personal_data = "refuse"` stops a
//! sync that would deliver an unprotected IBAN column before a row is written; the same
//! sync passes once the column is hashed, or allowed with a reason (which the signed
//! receipt keeps); `warn` (the default) warns once per column; look-alikes (order
//! numbers, SKUs, 16-digit numbers failing Luhn) are never flagged.
//!
//! The data is written by Python (an independent IBAN mod-97 and Luhn implementation).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::cli::{assert_says, exits_saying_all, ferry_in, out, Setup};
use support::{folder, read, sqlite};

const PASSPHRASE: &str = "guard test passphrase";
const ROWS: usize = 1_500;

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir).passphrase(PASSPHRASE).run(args, None)
}

fn ferry_ok(dir: &Path, args: &[&str]) -> Output {
    let o = ferry(dir, args);
    assert!(o.status.success(), "ferry {}: {}", args.join(" "), out(&o));
    o
}

/// `payments.csv`: an IBAN and an e-mail column, and look-alikes.
const WRITER: &str = r#"
import csv, random, sys
random.seed(11)
def luhn_ok(s):
    total = 0
    for i, c in enumerate(reversed(s)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9: d -= 9
        total += d
    return total % 10 == 0
def iban(country, bban):
    num = ''.join(str(int(c, 36)) for c in bban + country + '00')
    return '%s%02d%s' % (country, 98 - int(num) % 97, bban)
def not_luhn():
    while True:
        s = '4' + ''.join(str(random.randint(0, 9)) for _ in range(15))
        if not luhn_ok(s): return s
with open(sys.argv[1], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['id', 'order_number', 'sku', 'reference', 'iban', 'email'])
    for i in range(int(sys.argv[2])):
        w.writerow([i + 1, 'ORD-%06d' % (100000 + i),
                    'SKU-%s%04d' % (random.choice(['AB', 'CD']), random.randint(0, 9999)),
                    not_luhn(), iban('NL', 'ABNA%010d' % random.randint(0, 9999999999)),
                    'client%d@example.org' % i])
"#;

/// A client folder with `payments.csv`, its vault and a signing key; `stream` is the
/// `[[streams]]` entry's extra lines, `run` the `[run]` table's.
fn client(run: &str, stream: &str) -> tempfile::TempDir {
    let tmp = folder::with_config(&config(run, stream));
    let o = Command::new("python3")
        .arg("-c")
        .arg(WRITER)
        .arg(tmp.path().join("payments.csv"))
        .arg(ROWS.to_string())
        .output()
        .expect("python3 runs (it writes the test data; install python3)");
    assert!(o.status.success(), "{}", out(&o));
    ferry_ok(tmp.path(), &["keys", "generate", "signing"]);
    ferry_ok(tmp.path(), &["keys", "generate", "hash"]);
    tmp
}

fn config(run: &str, stream: &str) -> String {
    format!(
        "[source]\ntype = \"file\"\npath = \"payments.csv\"\nprimary_key = [\"id\"]\n\
         [destination]\ntype = \"sqlite\"\npath = \"out/pay.db\"\n\
         [run]\n{run}\n\
         [[streams]]\nname = \"payments\"\nmode = \"upsert\"\nincremental = true\n{stream}\n"
    )
}

fn db(dir: &Path) -> std::path::PathBuf {
    dir.join("out/pay.db")
}

/// The report's `personal_data` flag for `column`.
fn flag<'a>(stream: &'a serde_json::Value, column: &str) -> &'a serde_json::Value {
    stream["personal_data"]["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("no personal_data in {stream}"))
        .iter()
        .find(|c| c["column"] == column)
        .unwrap_or_else(|| panic!("{column} not flagged: {stream}"))
}

const LOOK_ALIKES: [&str; 4] = ["`id`", "`order_number`", "`sku`", "`reference`"];

#[test]
fn refuse_stops_an_unprotected_iban_until_it_is_hashed_or_allowed() {
    let tmp = client(
        "personal_data = \"refuse\"",
        "allow_personal = [{ column = \"email\", reason = \"the client's own contacts\" }]",
    );
    let dir = tmp.path();

    // unprotected: nothing written, nothing committed, the error says what and how to fix it
    let o = ferry(dir, &["sync", "--report", "r.json"]);
    let printed = exits_saying_all(
        &o,
        1,
        &[
            "stream `payments` would deliver personal data unprotected",
            "personal_data = \"refuse\"",
            "column `iban` appears to hold iban",
            "sampled values (",
            "of 1,000 sampled values",
            "pass the IBAN checksum (mod 97)",
            "{ type = \"hash\", column = \"iban\", key = \"${secret:hash_key}\" }",
            "allow_personal = [{ column = \"iban\", reason = ",
        ],
    );
    // the allowed e-mail and the look-alikes are not what stopped it
    let error_line = printed
        .lines()
        .find(|l| l.contains("would deliver"))
        .unwrap();
    assert_says(error_line, &[], &LOOK_ALIKES);
    assert_says(error_line, &[], &["column `email`"]);
    assert_eq!(sqlite::rows(&db(dir), "payments").unwrap_or(0), 0);
    let o = ferry_ok(dir, &["state", "show"]);
    assert!(
        !out(&o).contains("\"payments\""),
        "state committed: {}",
        out(&o)
    );
    let report = read::json(&dir.join("r.json"));
    let s = &report["streams"][0];
    assert_eq!(s["rows_committed"], 0, "{s}");
    assert_eq!(flag(s, "iban")["status"], "unprotected");
    assert_eq!(flag(s, "iban")["of"], 1000);
    assert_eq!(flag(s, "email")["status"], "allowed");
    assert_eq!(s["personal_data"]["columns"].as_array().unwrap().len(), 2);

    // `ferry plan` samples the same rows and says the sync would refuse (exit 1)
    let o = ferry(dir, &["plan"]);
    exits_saying_all(
        &o,
        1,
        &[
            "personal:    iban appears to hold iban (1,000 of 1,000 sampled values",
            "UNPROTECTED: `ferry sync` would refuse",
            "personal:    email appears to hold email",
            "allowed: the client's own contacts",
        ],
    );

    // hashed: it passes, and the IBAN is recorded as protected
    folder::edit(
        dir,
        "sync.toml",
        "incremental = true\n",
        "incremental = true\ntransforms = [{ type = \"hash\", column = \"iban\", key = \"${secret:hash_key}\" }]\n",
    );
    let o = ferry_ok(dir, &["sync", "--report", "r.json"]);
    assert_says(&out(&o), &[], &["warning:"]);
    assert_eq!(sqlite::rows(&db(dir), "payments"), Some(ROWS as u64));
    let s = read::json(&dir.join("r.json"))["streams"][0].clone();
    assert_eq!(flag(&s, "iban")["status"], "protected", "{s}");
    assert_eq!(flag(&s, "iban")["kind"], "iban");

    // allowed with a reason instead: it passes; the signed receipt keeps the reason
    let tmp = client(
        "personal_data = \"refuse\"",
        "allow_personal = [\n  { column = \"email\", reason = \"the client's own contacts\" },\n  \
         { column = \"iban\", reason = \"contract §4: payouts need the account\" },\n]",
    );
    let dir = tmp.path();
    ferry_ok(dir, &["sync"]);
    assert_eq!(sqlite::rows(&db(dir), "payments"), Some(ROWS as u64));
    let receipt_path = read::only_receipt(dir).display().to_string();
    let receipt = read::json(Path::new(&receipt_path));
    let pd = &receipt["receipt"]["streams"][0]["personal_data"];
    assert_eq!(pd["policy"], "refuse", "{pd}");
    assert_eq!(
        pd["allowances"][1],
        serde_json::json!({"column": "iban", "reason": "contract §4: payouts need the account"})
    );
    let iban = pd["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "iban")
        .unwrap();
    assert_eq!(iban["status"], "allowed", "{pd}");
    assert!(iban["matched"].as_u64().unwrap() >= 800, "{iban}");
    let shown = ferry_ok(dir, &["keys", "show", "signing"]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let pubkey = shown.lines().last().unwrap().trim().to_string();
    let o = ferry(dir, &["verify", &receipt_path, "--pubkey", &pubkey]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    // an edited reason no longer verifies
    let text = std::fs::read_to_string(&receipt_path).unwrap();
    std::fs::write(&receipt_path, text.replace("contract §4", "contract §5")).unwrap();
    let o = ferry(dir, &["verify", &receipt_path, "--pubkey", &pubkey]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
}

#[test]
fn warn_is_the_default_and_warns_once_per_column() {
    let tmp = client("", "");
    let dir = tmp.path();
    let o = ferry_ok(dir, &["sync", "--report", "r.json"]);
    let printed = out(&o);
    for column in ["iban", "email"] {
        let needle = format!("warning: stream `payments`, column `{column}` appears to hold");
        assert_eq!(printed.matches(&needle).count(), 1, "{printed}");
    }
    assert_eq!(
        printed.matches("warning: stream `payments`").count(),
        2,
        "{printed}"
    );
    assert_says(
        &printed,
        &["hash it (`{ type = \"hash\", column = \"iban\""],
        &LOOK_ALIKES,
    );
    assert_eq!(sqlite::rows(&db(dir), "payments"), Some(ROWS as u64));
    let s = read::json(&dir.join("r.json"))["streams"][0].clone();
    assert_eq!(s["personal_data"]["policy"], "warn");
    assert_eq!(flag(&s, "email")["status"], "unprotected");
    assert_eq!(flag(&s, "email")["kind"], "email");
}

#[test]
fn allowances_must_name_a_delivered_column_and_give_a_reason() {
    let tmp = client(
        "personal_data = \"refuse\"",
        "transforms = [{ type = \"drop\", columns = [\"email\"] }]\n\
         allow_personal = [{ column = \"email\", reason = \"x\" }]",
    );
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    exits_saying_all(
        &o,
        2,
        &[
            "allows personal data in column `email`, which it does not deliver",
            "id, order_number, sku, reference, iban",
        ],
    );
    assert!(!db(dir).exists() || sqlite::rows(&db(dir), "payments").is_none());
    std::fs::write(
        dir.join("sync.toml"),
        config(
            "",
            "allow_personal = [{ column = \"email\", reason = \" \" }]",
        ),
    )
    .unwrap();
    let o = ferry(dir, &["sync"]);
    exits_saying_all(
        &o,
        2,
        &[
            "allows column `email` to hold personal data without a reason",
            "line ",
        ],
    );
}
