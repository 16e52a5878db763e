//! `ferry profile` on generated data with planted personal data: every planted column is
//! found, no look-alike is flagged, `--sample` bounds the rows read, an unknown stream is
//! named, and the suggested TOML is valid config that a sync runs with.
//!
//! The data is written by Python (an independent implementation of the checksums: IBAN
//! mod 97, Luhn, the BSN 11-test), not by the code under test.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::cli::{exits_saying_all, ferry_in, out, Setup};
use support::folder;

const PASSPHRASE: &str = "profile test passphrase";
const ROWS: usize = 2_000;

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir)
        .env("FERRY_PASSPHRASE", PASSPHRASE)
        .run(args, None)
}

/// [`ferry`], failing the test, with all it printed, unless it succeeded.
fn ferry_ok(dir: &Path, args: &[&str]) -> Output {
    let o = ferry(dir, args);
    assert!(o.status.success(), "ferry {}: {}", args.join(" "), out(&o));
    o
}

/// Writes `people.csv` with ROWS rows: planted personal-data columns and look-alikes.
const WRITER: &str = r#"
import csv, random, sys, uuid, datetime
random.seed(7)
def luhn_digit(body):
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9: d -= 9
        total += d
    return str((10 - total % 10) % 10)
def iban(country, bban):
    num = ''.join(str(int(c, 36)) for c in bban + country + '00')
    return '%s%02d%s' % (country, 98 - int(num) % 97, bban)
def bsn():
    while True:
        d = [random.randint(0, 9) for _ in range(9)]
        if d[0] and (sum((9 - i) * d[i] for i in range(8)) - d[8]) % 11 == 0:
            return ''.join(map(str, d))
rows = int(sys.argv[2])
with open(sys.argv[1], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['id', 'order_number', 'sku', 'created_at', 'request_id', 'token', 'status',
                'amount', 'email', 'mobile', 'iban', 'card', 'ssn', 'ni_number', 'bsn',
                'client_ip', 'birth_date', 'postcode', 'street'])
    start = datetime.datetime(2025, 1, 1)
    for i in range(rows):
        w.writerow([
            i + 1,
            'ORD-%06d' % (100000 + i),
            'SKU-%s%04d' % (random.choice(['AB', 'CD', 'EF']), random.randint(0, 9999)),
            (start + datetime.timedelta(minutes=17 * i)).strftime('%Y-%m-%dT%H:%M:%SZ'),
            str(uuid.UUID(int=random.getrandbits(128), version=4)),
            ''.join(str(random.randint(0, 9)) for _ in range(16)),
            random.choice(['paid', 'open', 'void']),
            '%d.%02d' % (random.randint(1, 5000), random.randint(0, 99)),
            'customer%d@example.org' % i,
            '+31 6 %08d' % random.randint(0, 99999999),
            iban('NL', 'ABNA%010d' % random.randint(0, 9999999999)),
            (lambda b: b + luhn_digit(b))('4' + ''.join(str(random.randint(0, 9)) for _ in range(14))),
            '%03d-%02d-%04d' % (random.randint(1, 665), random.randint(1, 99), random.randint(1, 9999)),
            '%s%s%06d%s' % (random.choice('ABCEHJKLMNPRSTWXYZ'), random.choice('ABCEHJKLMNPRSTWXYZ'), random.randint(0, 999999), random.choice('ABCD')),
            bsn(),
            '10.%d.%d.%d' % (random.randint(0, 255), random.randint(0, 255), random.randint(1, 254)),
            datetime.date(random.randint(1940, 2005), random.randint(1, 12), random.randint(1, 28)).isoformat(),
            '%04d %s' % (random.randint(1000, 9999), random.choice(['AB', 'XY', 'KL'])),
            '%d %s' % (random.randint(1, 300), random.choice(['Main Street', 'Kerkstraat', 'High Road'])),
        ])
"#;

/// (column, kind) of every planted personal-data column.
const PLANTED: &[(&str, &str)] = &[
    ("email", "email"),
    ("mobile", "phone"),
    ("iban", "iban"),
    ("card", "payment_card"),
    ("ssn", "us_ssn"),
    ("ni_number", "uk_nino"),
    ("bsn", "nl_bsn"),
    ("client_ip", "ipv4"),
    ("birth_date", "date_of_birth"),
    ("postcode", "postal_code"),
    ("street", "address"),
];

/// Columns that must not be flagged.
const LOOK_ALIKES: &[&str] = &[
    "id",
    "order_number",
    "sku",
    "created_at",
    "request_id",
    "token",
    "status",
    "amount",
];

fn client() -> tempfile::TempDir {
    let tmp = folder::with_config(
        "[source]\ntype = \"file\"\npath = \"people.csv\"\n\
         [destination]\ntype = \"sqlite\"\npath = \"out/people.db\"\n\
         [[streams]]\nname = \"people\"\n",
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(WRITER)
        .arg(tmp.path().join("people.csv"))
        .arg(ROWS.to_string())
        .output()
        .expect("python3 runs (it writes the test data)");
    assert!(o.status.success(), "{}", out(&o));
    tmp
}

fn profile_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["profile", "--json"];
    all.extend_from_slice(args);
    let o = ferry_ok(dir, &all);
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn column<'a>(stream: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stream["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn kinds(col: &serde_json::Value) -> Vec<String> {
    col["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn finds_every_planted_column_and_flags_no_look_alike() {
    let tmp = client();
    let doc = profile_json(tmp.path(), &[]);
    assert_eq!(doc["version"], 1);
    let s = &doc["streams"][0];
    assert_eq!(s["stream"], "people");
    assert_eq!(s["rows"], ROWS as u64);
    assert_eq!(s["complete"], true);
    for (name, kind) in PLANTED {
        let col = column(s, name);
        assert_eq!(kinds(col), vec![kind.to_string()], "{name}: {col}");
        let f = &col["findings"][0];
        let matched = f["matched"].as_u64().unwrap();
        assert!(matched as f64 >= 0.8 * ROWS as f64, "{name}: {f}");
        assert!(
            f["evidence"].as_str().unwrap().starts_with(&format!(
                "{} of 2,000 values",
                ferry_engine::report::group(matched)
            )),
            "{f}"
        );
        // the values of a personal-data column stay out of the output
        assert_eq!(col["redacted"], true);
        assert!(col["top_values"].as_array().unwrap().is_empty(), "{col}");
        assert!(col["min"].is_null(), "{col}");
    }
    for name in LOOK_ALIKES {
        let col = column(s, name);
        assert!(kinds(col).is_empty(), "{name} flagged: {col}");
    }
    // figures of a plain column
    let id = column(s, "id");
    assert_eq!(id["distinct"], ROWS as u64);
    assert_eq!(id["distinct_exact"], true);
    assert_eq!(id["min"], "1");
    assert_eq!(id["max"], ROWS.to_string());
    let status = column(s, "status");
    assert_eq!(status["distinct"], 3);
    let counted: u64 = status["top_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, ROWS as u64, "three values, counted exactly");
    assert_eq!(column(s, "order_number")["one_shape"], "AAA-999999");
    assert_eq!(column(s, "sku")["length"]["min"], 10);
}

#[test]
fn sample_bounds_the_rows_read_and_the_table_says_so() {
    let tmp = client();
    let doc = profile_json(tmp.path(), &["--sample", "300"]);
    let s = &doc["streams"][0];
    assert_eq!(s["rows"], 300);
    assert_eq!(s["complete"], false);
    assert_eq!(column(s, "id")["max"], "300", "the first 300 rows");
    let ev = column(s, "email")["findings"][0]["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ev, "300 of 300 sampled values (100 %) are e-mail addresses");
    // the sample is only a sample: unique is suggested commented out
    let toml = s["suggested_toml"].as_str().unwrap();
    assert!(
        toml.contains("  # { type = \"unique\", columns = [\"id\"] },"),
        "{toml}"
    );

    let o = ferry_ok(tmp.path(), &["profile", "--sample", "300"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("stream people: the first 300 rows (a sample; --full reads all)"),
        "{text}"
    );
    assert!(
        text.contains(
            "iban: iban — 300 of 300 sampled values (100 %) pass the IBAN checksum (mod 97)"
        ),
        "{text}"
    );

    let doc = profile_json(tmp.path(), &["--sample", "2000"]);
    assert_eq!(
        doc["streams"][0]["complete"], true,
        "exactly all rows: complete"
    );
}

#[test]
fn an_unknown_stream_is_named_with_the_streams_there_are() {
    let tmp = client();
    let o = ferry(tmp.path(), &["profile", "--streams", "people,persons"]);
    exits_saying_all(
        &o,
        2,
        &[
            "`persons`",
            "its streams are: people",
            "leave --streams out",
        ],
    );
    assert!(o.stdout.is_empty(), "nothing profiled before the error");
}

#[test]
fn the_suggested_toml_is_config_a_sync_runs_with() {
    let tmp = client();
    let d = tmp.path();
    let doc = profile_json(d, &["--full"]);
    let toml = doc["streams"][0]["suggested_toml"]
        .as_str()
        .unwrap()
        .to_string();
    for expected in [
        "{ type = \"hash\", column = \"email\", key = \"${secret:hash_key}\" },",
        "{ type = \"encrypt\", column = \"iban\", key = \"${secret:field_key}\" },",
        "{ type = \"mask\", column = \"card\", keep_last = 4 },",
        "{ type = \"drop\", columns = [\"birth_date\", \"postcode\", \"street\"] },",
        "{ type = \"unique\", columns = [\"id\"] },",
        "{ type = \"allowed\", column = \"status\", values = [\"open\", \"paid\", \"void\"] },",
        "{ type = \"range\", column = \"id\", min = 1, max = 2000 },",
        "{ type = \"regex\", column = \"order_number\", pattern = '^[A-Za-z]{3}\\-[0-9]{6}$' },",
        "# email (email): 2,000 of 2,000 values (100 %) are e-mail addresses",
    ] {
        assert!(toml.contains(expected), "missing {expected}\n{toml}");
    }
    // the block pasted as it is, in place of the config's stream entry
    folder::write(
        d,
        "sync.toml",
        format!(
            "[source]\ntype = \"file\"\npath = \"people.csv\"\n\
             [destination]\ntype = \"sqlite\"\npath = \"out/people.db\"\n\n{toml}"
        ),
    );
    for kind in ["hash", "field"] {
        ferry_ok(d, &["keys", "generate", kind]);
    }
    // ferry check takes the pasted TOML
    ferry_ok(d, &["check"]);
    ferry_ok(d, &["sync"]);
    let db = rusqlite::Connection::open(d.join("out/people.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM people", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, ROWS as i64, "every row passed the suggested checks");
    let (email, card): (String, String) = db
        .query_row("SELECT email, card FROM people WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(email.len(), 64, "hashed: {email}");
    assert!(email.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        card.starts_with("************") && card.len() == 16,
        "{card}"
    );
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('people')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for gone in ["birth_date", "postcode", "street"] {
        assert!(
            !columns.contains(&gone.to_string()),
            "{gone} dropped: {columns:?}"
        );
    }
}

#[test]
fn quickstart_example() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    folder::copy_from_repo("examples/quickstart/sync.toml", d, "sync.toml");
    folder::copy_from_repo("examples/quickstart/customers.csv", d, "customers.csv");
    let doc = profile_json(d, &[]);
    let s = &doc["streams"][0];
    assert_eq!(kinds(column(s, "email")), vec!["email"]);
    for plain in [
        "id",
        "name",
        "country",
        "signup_date",
        "balance",
        "updated_at",
    ] {
        assert!(
            kinds(column(s, plain)).is_empty(),
            "{plain}: {}",
            column(s, plain)
        );
    }
}
