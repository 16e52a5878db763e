//! The command line's manners, as a user meets them: `check` finds what `sync` would
//! refuse, `plan`'s estimates and exit codes, hints that name the next step, one table
//! of exit codes, quiet ends when a pipe closes, one line for missing S3 credentials,
//! `init` templates at their real defaults, and the README's test command.
//!
//! The PostgreSQL test needs the server on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`); `.ci/test`
//! starts it.

use std::path::Path;
use std::process::{Output, Stdio};

// plan over S3: the root tests' in-process S3 server
#[path = "support/s3.rs"]
mod s3;
mod support;

use support::cli::{self, ferry_in, out, Setup};
use support::config::generate;
use support::db::{mysql, mysql_url, mysql_url_for, pg, pg_url};
use support::folder::{self, write};

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_in(dir).no_vault_key().run(args, None)
}

const GENERATE: &str = r#"[source]
type = "generate"
streams = [{ name = "orders", preset = "orders", rows = 50 }]

[destination]
type = "sqlite"
path = "out.db"
"#;

// ---------------------------------------------------------------------------------------
// item 15: pipes

/// Runs `ferry args` with its stdout a pipe whose reader has gone (as `| head -1` leaves it).
fn with_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let mut child = cli::spawn(dir, args);
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let tmp = folder::with_config(GENERATE);
    let dir = tmp.path();
    for args in [
        &["spec", "postgres"][..],
        &["connectors"],
        &["discover", "--json"],
        &["discover"],
        &["completions", "bash"],
    ] {
        let o = with_closed_stdout(dir, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "ferry {args:?}: {err}"
        );
        assert_eq!(o.status.code(), Some(0), "ferry {args:?}: {err}");
    }
    // the vault's names too
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", "pipe test passphrase")
        .run(&["secrets", "set", "token"], Some("value"));
    assert!(o.status.success(), "{}", out(&o));
    let mut child = cli::process_in(dir)
        .env("FERRY_PASSPHRASE", "pipe test passphrase")
        .args(["secrets", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}

// ---------------------------------------------------------------------------------------
// item 14: hints and exit codes

#[test]
fn a_missing_config_file_exits_2_and_says_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in ["check", "sync", "plan", "discover"] {
        let o = ferry(tmp.path(), &[cmd, "-c", "nope.toml"]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", out(&o));
        let text = out(&o);
        assert!(
            text.contains("no config file at nope.toml"),
            "{cmd}: {text}"
        );
        assert!(text.contains("ferry init"), "{cmd}: {text}");
        assert!(!text.contains("ferry discover"), "{cmd}: {text}");
    }
}

#[test]
fn a_wrong_vault_passphrase_says_so() {
    let tmp = folder::with_config(GENERATE);
    let dir = tmp.path();
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", "the right one")
        .run(&["secrets", "set", "token"], Some("value"));
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry_in(dir)
        .env("FERRY_PASSPHRASE", "a wrong one")
        .run(&["secrets", "list"], None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("hint:") && text.contains("passphrase"),
        "{text}"
    );
    assert!(!text.contains("user name"), "{text}");
}

#[test]
fn a_destination_of_another_client_gets_a_hint_about_tenants() {
    let tmp = folder::with_config(&format!("client = \"acme\"\n{GENERATE}"));
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    write(dir, "sync.toml", format!("client = \"globex\"\n{GENERATE}"));
    for cmd in ["sync", "check"] {
        let o = ferry(dir, &[cmd]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", out(&o));
        cli::assert_says(
            &out(&o),
            &["bound to client `acme`", "hint:", "tenant"],
            &["grant the missing permission"],
        );
    }
}

#[test]
fn decrypt_takes_an_identity_file_as_age_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (secret, public) = ferry_formats::age::generate_identity();
    write(dir, "key.txt", format!("{}\n", secret.expose()));
    write(dir, "plain.txt", "hello age\n");
    let o = ferry(
        dir,
        &["encrypt", "-r", &public, "-o", "plain.txt.age", "plain.txt"],
    );
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["decrypt", "--identity", "key.txt", "plain.txt.age"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello age\n");
    // a path that is not there: named, with what -i takes
    let o = ferry(dir, &["decrypt", "-i", "nokey.txt", "plain.txt.age"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("no identity file at `nokey.txt`"), "{text}");
    assert!(text.contains("AGE-SECRET-KEY-1"), "{text}");
    assert!(!text.contains("fix the configuration file"), "{text}");
}

#[test]
fn readme_has_one_exit_code_table_the_commands_keep() {
    let readme = std::fs::read_to_string(folder::repo("README.md")).unwrap();
    let start = readme
        .find("## Exit codes")
        .expect("README has an `## Exit codes` section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let codes: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()) && !c.is_empty())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3", "130"], "{section}");

    // 2 for a config typo, from every command that reads the config
    let tmp = folder::with_config(&GENERATE.replace(
        "type = \"generate\"\n",
        "type = \"generate\"\npth = \"x\"\n",
    ));
    let dir = tmp.path();
    for cmd in ["check", "sync", "plan", "discover"] {
        let o = ferry(dir, &[cmd]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", out(&o));
        assert!(out(&o).contains("pth"), "{cmd}: {}", out(&o));
    }
    // 2 for a command-line mistake
    let o = ferry(dir, &["sync", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // 0, then 1 when a connection fails
    write(dir, "sync.toml", GENERATE);
    let o = ferry(dir, &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    write(dir, "blocker", "a file where a folder should be");
    write(
        dir,
        "sync.toml",
        GENERATE.replace("path = \"out.db\"", "path = \"blocker/out.db\""),
    );
    let o = ferry(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
}

// ---------------------------------------------------------------------------------------
// item 9: check finds what sync would refuse

#[test]
fn check_finds_what_sync_refuses_with_the_same_message_and_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        // a stream name typo
        "[[streams]]\nname = \"ordrs\"\n",
        // a derive expression that does not compile
        "[[streams]]\nname = \"orders\"\ntransforms = [{ type = \"derive\", column = \"x\", expr = \"amount *\", as = \"float64\" }]\n",
        // a cursor that is not a column
        "[[streams]]\nname = \"orders\"\ncursor = \"nope\"\n",
    ];
    for extra in cases {
        write(dir, "sync.toml", format!("{GENERATE}\n{extra}"));
        let check = ferry(dir, &["check"]);
        let sync = ferry(dir, &["sync"]);
        assert_eq!(check.status.code(), Some(2), "{extra}\n{}", out(&check));
        assert_eq!(sync.status.code(), Some(2), "{extra}\n{}", out(&sync));
        // the same positioned message
        let check_err = String::from_utf8_lossy(&check.stderr);
        let sync_err = String::from_utf8_lossy(&sync.stderr);
        assert!(check_err.contains("sync.toml:"), "{check_err}");
        assert!(
            check_err.contains("hint: fix the stream's entry"),
            "{check_err}"
        );
        assert_eq!(check_err, sync_err, "{extra}");
        assert!(!dir.join("out.db").exists() || extra.contains("ordrs"));
    }
}

// ---------------------------------------------------------------------------------------
// item 10: plan's estimates and exit codes (PostgreSQL)

#[tokio::test(flavor = "multi_thread")]
async fn plan_estimates_postgres_tables_and_exits_0_when_nothing_is_new() {
    let mut db = TestDb::pg("cliux_plan", |schema| {
        format!(
            "CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, total numeric(10,2));
             INSERT INTO {schema}.orders SELECT g, g * 1.5 FROM generate_series(1, 4) g;"
        )
    })
    .await;
    let tmp = plan_sync_plan(&pg_source(&db.name), 4).await;
    let dir = tmp.path();
    db.run(format!(
        "INSERT INTO {}.orders VALUES (5, 7.5), (6, 9)",
        db.name
    ))
    .await;
    assert_plan(&ferry_blocking(dir, &["plan"]).await, 2, 3);
    // a full refresh: the table's size
    let o = ferry_blocking(dir, &["plan", "--full-refresh"]).await;
    assert!(
        out(&o).contains("estimate:    6 rows to move"),
        "{}",
        out(&o)
    );
    db.remove().await;
}

// ---------------------------------------------------------------------------------------
// item 16: S3 without credentials

#[test]
fn s3_without_credentials_says_so_in_one_line() {
    let tmp = folder::with_config(&format!(
        r#"{}
[destination]
type = "s3"
bucket = "cliux-no-credentials"
region = "us-east-1"
endpoint = "http://127.0.0.1:9"
"#,
        generate("orders", "orders", 5)
    ));
    let dir = tmp.path();
    let mut cmd = ferry_in(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let o = cmd
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        // the instance metadata service answers nothing here, at once
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
        .args(["check"])
        .output()
        .unwrap();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("no AWS credentials found"))
        .unwrap_or_else(|| panic!("no one-line credentials message:\n{text}"));
    assert!(
        line.contains("AWS_ACCESS_KEY_ID") && line.contains("instance metadata"),
        "{line}"
    );
    assert!(!text.to_lowercase().contains("imds"), "{text}");
    assert!(text.contains("hint: set `access_key_id`"), "{text}");
    assert!(!text.contains("user name"), "{text}");
    assert!(text.lines().count() <= 6, "{text}");
}

// ---------------------------------------------------------------------------------------
// item 13: init templates

/// `(default X)` in a doc comment, as the value a field would be written with.
fn stated_default(doc: &str) -> Option<String> {
    let start = doc.find("(default ")? + "(default ".len();
    let rest = &doc[start..];
    if let Some(q) = rest.strip_prefix('`') {
        return Some(q[..q.find('`')?].to_string());
    }
    let end = rest.find([' ', ')', ',', ';', ':'])?;
    if rest[end..].starts_with(' ') {
        return None; // `8 MiB`: a figure with a unit
    }
    let token = &rest[..end];
    format!("v = {token}")
        .parse::<toml::Table>()
        .ok()
        .map(|_| token.to_string())
}

#[test]
fn init_templates_show_real_defaults_and_set_what_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    let list = ferry(tmp.path(), &["connectors"]);
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let mut pairs = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 3 {
            if cols[1] == "yes" {
                pairs.push((cols[0].to_string(), "sqlite".to_string()));
            }
            if cols[2] == "yes" {
                pairs.push(("generate".to_string(), cols[0].to_string()));
            }
        }
    }
    assert!(pairs.len() >= 10, "{text}");
    let mut checked = 0;
    for (i, (src, dst)) in pairs.iter().enumerate() {
        let folder = tmp.path().join(format!("c{i}"));
        let o = ferry(
            tmp.path(),
            &[
                "init",
                "acme",
                "--source",
                src,
                "--destination",
                dst,
                "--dir",
                folder.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{src} -> {dst}: {}", out(&o));
        let toml_text = std::fs::read_to_string(folder.join("sync.toml")).unwrap();
        // every commented field is shown at the default its doc states
        let mut doc = String::new();
        for line in toml_text.lines() {
            match line.strip_prefix("# ") {
                Some(l)
                    if l.contains(" = ") && !l.starts_with(' ') && doc.contains("(default ") =>
                {
                    let (key, value) = l.split_once(" = ").unwrap();
                    if let Some(want) = stated_default(&doc) {
                        let as_toml = |v: &str| {
                            format!("v = {v}")
                                .parse::<toml::Table>()
                                .map(|t| match t["v"].clone() {
                                    // 10 and 10.0 state the same default
                                    toml::Value::Integer(i) => toml::Value::Float(i as f64),
                                    v => v,
                                })
                                .unwrap_or_else(|_| toml::Value::String(v.to_string()))
                        };
                        assert_eq!(
                            as_toml(value.trim()),
                            as_toml(&want),
                            "{src} -> {dst}: `{key}`, doc: {doc}"
                        );
                        checked += 1;
                    }
                    doc.clear();
                }
                Some(l) => {
                    doc.push_str(l);
                    doc.push(' ');
                }
                None => doc.clear(),
            }
        }
        // fields a connection cannot do without are set
        for line in toml_text.lines() {
            assert!(
                !line.starts_with("# database = ") && !line.starts_with("# user = "),
                "{src} -> {dst}: required field commented out:\n{toml_text}"
            );
        }
        assert!(
            !toml_text.contains("timeout_secs = 0.0"),
            "{src} -> {dst}:\n{toml_text}"
        );
    }
    assert!(checked > 20, "only {checked} defaults were checked");
    let pg = std::fs::read_to_string(
        tmp.path()
            .join(format!(
                "c{}",
                pairs.iter().position(|(s, _)| s == "postgres").unwrap()
            ))
            .join("sync.toml"),
    )
    .unwrap();
    assert!(pg.contains("\n# connect_timeout_secs = 15\n"), "{pg}");
    assert!(pg.contains("\ndatabase = "), "{pg}");
    assert!(pg.contains("\nuser = "), "{pg}");
}

// ---------------------------------------------------------------------------------------
// item 12: the README's test command installs what the tests need

#[test]
fn the_readme_test_command_installs_what_the_tests_need() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let setup = &readme[readme.find("## Set up (two commands)").unwrap()..];
    let setup = &setup[..setup[3..].find("\n## ").unwrap() + 3];
    let commands: Vec<&str> = setup
        .split("```sh\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].trim())
        .collect();
    assert_eq!(commands.len(), 2, "{setup}");
    assert_eq!(commands[1], ".ci/test", "{setup}");
    let script = std::fs::read_to_string(root.join(".ci/test")).unwrap();
    assert!(
        script.contains("cargo test --workspace --no-fail-fast"),
        "{script}"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("\n.ci/test\n"), "{ci}");
    // every Debian package a test asks for when it is missing is installed by the script
    let mut asked = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() && !name.starts_with('.') && name != "target" && name != "examples" {
                stack.push(p);
            } else if name.ends_with(".rs") && p != root.join("tests/cli_ux.rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                for (i, _) in text.match_indices("apt-get install ") {
                    let pkg: String = text[i + 16..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    asked.push((pkg, p.display().to_string()));
                }
            }
        }
    }
    assert!(asked.iter().any(|(p, _)| p == "age"), "{asked:?}");
    for (pkg, file) in asked {
        assert!(
            script.contains(&format!("need+=({pkg})")),
            "{file} asks for `apt-get install {pkg}`, which .ci/test does not install"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_counts_mysql_rows_past_the_cursor() {
    let mut db = TestDb::mysql("cliux_plan", |db| {
        format!(
            "CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, total DECIMAL(10,2));
             INSERT INTO {db}.orders VALUES (1, 1.5), (2, 3), (3, 4.5);"
        )
    })
    .await;
    let tmp = plan_sync_plan(&mysql_source(&db.name), 3).await;
    let dir = tmp.path();
    db.run(format!("INSERT INTO {}.orders VALUES (4, 6)", db.name))
        .await;
    assert_plan(&ferry_blocking(dir, &["plan"]).await, 1, 3);
    db.remove().await;
}

#[test]
fn plan_exits_0_when_no_file_is_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "people.csv", "id,name\n1,Ann\n2,Bo\n");
    write(
        dir,
        "sync.toml",
        "[source]\ntype = \"file\"\npath = \"people.csv\"\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"people\"\nincremental = true\n",
    );
    let o = ferry(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_plan(&ferry(dir, &["plan"]), 0, 0);
    // a rewritten file is read again: something would change
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(dir, "people.csv", "id,name\n1,Ann\n2,Bo\n3,Cy\n");
    let o = ferry(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
}

/// A folder whose `sync.toml` reads `source` (the `[source]` fields) into SQLite `out.db`,
/// with the `[[streams]]` entry `stream`.
fn into_sqlite(source: &str, stream: &str) -> tempfile::TempDir {
    folder::with_config(&format!(
        "[source]\n{source}\n\n[destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n[[streams]]\n{stream}"
    ))
}

/// [`ferry`] from an async test, on a thread that may block.
async fn ferry_blocking(dir: &Path, args: &'static [&'static str]) -> Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || ferry(&dir, args))
        .await
        .unwrap()
}

/// A folder reading stream `orders` of `source` by its cursor `id`: a plan counts `rows` to
/// move, a sync moves them, and the next plan has nothing to do.
async fn plan_sync_plan(source: &str, rows: u64) -> tempfile::TempDir {
    let tmp = into_sqlite(source, "name = \"orders\"\ncursor = \"id\"\n");
    let dir = tmp.path();
    assert_plan(&ferry_blocking(dir, &["plan"]).await, rows, 3);
    let o = ferry_blocking(dir, &["sync"]).await;
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry_blocking(dir, &["plan"]).await;
    assert_plan(&o, 0, 0);
    assert!(out(&o).contains("nothing would change"), "{}", out(&o));
    tmp
}

/// The `[source]` fields reading the PostgreSQL schema `schema`.
fn pg_source(schema: &str) -> String {
    format!(
        "type = \"postgres\"\nurl = \"{}\"\nschemas = [\"{schema}\"]",
        pg_url()
    )
}

/// A PostgreSQL schema or a MySQL database of one test, `<prefix>_<pid>`, and a
/// connection to its server.
struct TestDb {
    name: String,
    conn: Conn,
}

enum Conn {
    Pg(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl TestDb {
    /// A fresh PostgreSQL schema, made by `sql` (given its name).
    async fn pg(prefix: &str, sql: impl FnOnce(&str) -> String) -> TestDb {
        TestDb::fresh(prefix, Conn::Pg(pg().await), sql).await
    }

    /// A fresh MySQL database, made by `sql` (given its name).
    async fn mysql(prefix: &str, sql: impl FnOnce(&str) -> String) -> TestDb {
        TestDb::fresh(prefix, Conn::Mysql(mysql(&mysql_url()).await), sql).await
    }

    async fn fresh(prefix: &str, conn: Conn, sql: impl FnOnce(&str) -> String) -> TestDb {
        let mut db = TestDb {
            name: format!("{prefix}_{}", std::process::id()),
            conn,
        };
        let what = match db.conn {
            Conn::Pg(_) => "SCHEMA",
            Conn::Mysql(_) => "DATABASE",
        };
        let make = format!(
            "{}; CREATE {what} {};\n{}",
            db.drop_sql(),
            db.name,
            sql(&db.name)
        );
        db.run(make).await;
        db
    }

    fn drop_sql(&self) -> String {
        match self.conn {
            Conn::Pg(_) => format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            Conn::Mysql(_) => format!("DROP DATABASE IF EXISTS {}", self.name),
        }
    }

    async fn run(&mut self, sql: String) {
        match &mut self.conn {
            Conn::Pg(c) => c.batch_execute(&sql).await.unwrap(),
            Conn::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                c.query_drop(sql).await.unwrap()
            }
        }
    }

    async fn remove(mut self) {
        let sql = self.drop_sql();
        self.run(sql).await;
    }
}

/// The `[source]` fields reading the MySQL database `db`.
fn mysql_source(db: &str) -> String {
    format!("type = \"mysql\"\nurl = \"{}\"", mysql_url_for(db))
}

/// `o` is a plan whose first stream has `rows` rows to move (counted), exiting `code`.
fn assert_plan(o: &Output, rows: u64, code: i32) {
    assert!(
        out(o).contains(&format!("estimate:    {rows} rows to move")),
        "{}",
        out(o)
    );
    assert_eq!(o.status.code(), Some(code), "{}", out(o));
}

/// `o` is a plan whose first stream's estimate is in `rows` and whose line says `says`,
/// exiting 3 (something would change); returns the line.
fn assert_estimate(o: &Output, rows: std::ops::RangeInclusive<u64>, says: &str) -> String {
    let (n, line) = estimate_of(o);
    assert!(rows.contains(&n.unwrap_or(0)), "{line}");
    assert!(line.contains(says), "{line}");
    assert_eq!(o.status.code(), Some(3), "{}", out(o));
    line
}

/// After `sync`, `plan` finds no new or changed file: 0 rows to move, exit 0.
fn assert_nothing_new_after_sync(dir: &Path) {
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = ferry(dir, &["plan"]);
    assert!(
        estimate_of(&o)
            .1
            .contains("0 rows to move (no new or changed file)"),
        "{}",
        out(&o)
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
}

/// The row figure of plan's `estimate:` line for the first stream, and the line.
fn estimate_of(o: &Output) -> (Option<u64>, String) {
    let text = out(o);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("estimate:"))
        .unwrap_or_else(|| panic!("no estimate line:\n{text}"))
        .trim()
        .to_string();
    let digits: String = line["estimate:".len()..]
        .trim_start()
        .trim_start_matches('~')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    (digits.parse().ok(), line)
}

fn people_csv(from: u64, to: u64) -> String {
    let mut s = String::from("id,name,city\n");
    for i in from..to {
        s.push_str(&format!("{i},person number {i},Town{}\n", i % 7));
    }
    s
}

#[test]
fn plan_estimates_csv_files_from_their_sizes_and_counts_parquet_footers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("people")).unwrap();
    // 3 files, 12,000 rows, ~330 KB: more than the 64 KiB sample, so sizes must be used
    for (n, (from, to)) in [(0, 4000), (4000, 8000), (8000, 12000)].iter().enumerate() {
        write(dir, &format!("people/p{n}.csv"), people_csv(*from, *to));
    }
    let bytes: u64 = (0..3)
        .map(|n| {
            std::fs::metadata(dir.join(format!("people/p{n}.csv")))
                .unwrap()
                .len()
        })
        .sum();
    write(
        dir,
        "sync.toml",
        "[source]\ntype = \"file\"\npath = \"people/*.csv\"\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"people\"\nincremental = true\n",
    );
    let o = ferry(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let (rows, line) = estimate_of(&o);
    let rows = rows.unwrap_or_else(|| panic!("no row figure: {line}"));
    // an estimate, shown as one: within 10 % of the 12,000 rows, never as a bare count
    assert!((10_800..=13_200).contains(&rows), "{line}");
    assert!(
        line.contains('~') && line.contains("(an estimate)"),
        "{line}"
    );
    let size = format!("{:.1} KB", bytes as f64 / 1e3);
    assert!(
        line.contains(&format!("from 3 files, {size}")),
        "{line} ({bytes} bytes)"
    );

    assert_nothing_new_after_sync(dir);
    // a new file: only it is estimated
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(dir, "people/p3.csv", people_csv(12000, 12500));
    assert_estimate(&ferry(dir, &["plan"]), 450..=550, "from 1 file,");

    // Parquet (written by a file destination): its footer gives the exact count, shown as one
    let pq = dir.join("pq");
    std::fs::create_dir(&pq).unwrap();
    write(
        &pq,
        "sync.toml",
        "[source]\ntype = \"file\"\npath = \"../people/p[012].csv\"\n\n\
         [destination]\ntype = \"file\"\npath = \"../out\"\nformat = \"parquet\"\n\n\
         [[streams]]\nname = \"p\"\nmode = \"overwrite\"\n",
    );
    let o = ferry(&pq, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = plan_back(dir, "out/p.parquet", "p");
    let (_, line) = estimate_of(&o);
    assert!(
        line.starts_with("estimate:    12,000 rows to move from 1 file,"),
        "{line}"
    );
}

/// `ferry plan` in `dir/back` of a config reading `dir/<file>` into SQLite as `stream`.
fn plan_back(dir: &Path, file: &str, stream: &str) -> Output {
    let sub = dir.join("back");
    std::fs::create_dir(&sub).unwrap();
    let config = format!(
        "[source]\ntype = \"file\"\npath = \"../{file}\"\n\n\
         [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
         [[streams]]\nname = \"{stream}\"\n"
    );
    write(&sub, "sync.toml", config);
    ferry(&sub, &["plan"])
}

#[test]
fn plan_says_rows_unknown_for_compressed_files_but_names_files_and_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "people.csv", people_csv(0, 500));
    // the file destination writes the gzip file that the second config reads
    write(
        dir,
        "sync.toml",
        "[source]\ntype = \"file\"\npath = \"people.csv\"\n\n\
         [destination]\ntype = \"file\"\npath = \"out\"\ncompression = \"gzip\"\n\n\
         [[streams]]\nname = \"people\"\nmode = \"overwrite\"\n",
    );
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = plan_back(dir, "out/people.csv.gz", "people");
    let (rows, line) = estimate_of(&o);
    assert_eq!(rows, None, "{line}");
    assert!(
        line.contains("unknown number of rows from 1 file,"),
        "{line}"
    );
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_the_postgres_planners_figure_as_an_estimate() {
    // ~20 MB, past the 10 MB under which plan counts exactly: the planner's figure is used
    let db = TestDb::pg("cliux_planest", |schema| {
        format!(
            "CREATE TABLE {schema}.events (id bigint PRIMARY KEY, body text);
             INSERT INTO {schema}.events SELECT g, repeat('x', 100) FROM generate_series(1, 150000) g;
             ANALYZE {schema}.events;"
        )
    })
    .await;
    let source = pg_source(&db.name);
    assert_planned_estimate(db, &source, 135_000..=165_000).await;
}

/// `ferry plan` of table `events` of `source` (in `db`) into SQLite shows an estimate of
/// `rows`, marked as one; then `db` goes.
async fn assert_planned_estimate(db: TestDb, source: &str, rows: std::ops::RangeInclusive<u64>) {
    let tmp = into_sqlite(source, "name = \"events\"\n");
    let o = ferry_blocking(tmp.path(), &["plan"]).await;
    let line = assert_estimate(&o, rows, "(an estimate)");
    assert!(line.contains('~'), "{line}");
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_the_mysql_optimizers_figure_as_an_estimate() {
    // past the 100,000 rows under which plan counts exactly: the optimizer's figure is used
    let db = TestDb::mysql("cliux_planest", |db| {
        format!(
            "CREATE TABLE {db}.events (id BIGINT PRIMARY KEY, body VARCHAR(20)) ENGINE=InnoDB;
             INSERT INTO {db}.events
               WITH RECURSIVE a(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM a WHERE n < 399)
               SELECT x.n * 400 + y.n, 'some body' FROM a x, a y WHERE x.n < 375;
             ANALYZE TABLE {db}.events;"
        )
    })
    .await;
    let source = mysql_source(&db.name);
    // InnoDB's figure is rough (sampled pages): within a third of the 150,000 rows
    assert_planned_estimate(db, &source, 100_000..=200_000).await;
}

#[test]
fn plan_estimates_s3_objects_and_exits_0_when_none_is_new() {
    let server = s3::Server::start(&["planest"]);
    server.put("planest", "people/a.csv", people_csv(0, 5000).into_bytes());
    server.put(
        "planest",
        "people/b.csv",
        people_csv(5000, 10000).into_bytes(),
    );
    let tmp = folder::with_config(&format!(
        "[source]\ntype = \"s3\"\n{}path = \"people/*.csv\"\nstream = \"people\"\n\n\
             [destination]\ntype = \"sqlite\"\npath = \"out.db\"\n\n\
             [[streams]]\nname = \"people\"\nincremental = true\n",
        server.toml("planest")
    ));
    let dir = tmp.path();
    let o = ferry(dir, &["plan"]);
    assert_estimate(&o, 9_000..=11_000, "(an estimate) from 2 files,");
    assert_nothing_new_after_sync(dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    server.put(
        "planest",
        "people/c.csv",
        people_csv(10000, 10100).into_bytes(),
    );
    assert_estimate(&ferry(dir, &["plan"]), 90..=110, "from 1 file,");
}
