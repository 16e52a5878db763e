//! Every type PostgreSQL → MySQL/MariaDB → PostgreSQL, through the registry and the
//! runtime as `ferry sync` runs them: the final table must hold exactly the first one's
//! values (NULLs, empty strings, unicode, 38-digit decimals, time zones, JSON, UUIDs,
//! bytes, arrays as JSON), compared in SQL with `EXCEPT` both ways.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (`FERRY_TEST_PG_URL`) and MySQL or MariaDB on
//! 127.0.0.1:3306 (`FERRY_TEST_MYSQL_URL`); `.ci/run` starts both. A fresh schema and a
//! fresh database are used and dropped at the end.

mod support;

use std::sync::Arc;

use ferry_core::config::ConnectorConfig;
use ferry_core::WriteMode;
use ferry_engine::report::Status;
use ferry_engine::StreamConfig;
use ferry_testkit as testkit;
use mysql_async::prelude::Queryable;
use support::db::{self, mysql_url, mysql_url_for, pg_url};

/// A client of the test PostgreSQL, its session in UTC.
async fn pg() -> tokio_postgres::Client {
    let client = db::pg().await;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .expect("session");
    client
}

async fn mysql() -> mysql_async::Conn {
    db::mysql(&mysql_url()).await
}

/// The fresh PostgreSQL schema and MySQL database, dropped when it goes.
struct Places {
    schema: String,
    database: String,
}

impl Drop for Places {
    fn drop(&mut self) {
        let (schema, database) = (self.schema.clone(), self.database.clone());
        let _ = std::thread::spawn(move || {
            db::block(async {
                let _ = pg()
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await;
                let mut m = mysql().await;
                let _ = m
                    .query_drop(format!("DROP DATABASE IF EXISTS `{database}`"))
                    .await;
                let _ = m.disconnect().await;
            });
        })
        .join();
    }
}

fn connector(kind: &str, toml: &str) -> ConnectorConfig {
    support::connector::section(kind, toml, &std::env::temp_dir())
}

/// Syncs `stream` from `source` to `sink` (overwrite, named `to` there) and checks it
/// succeeded with `rows` rows.
async fn sync(source: ConnectorConfig, sink: ConnectorConfig, stream: &str, to: &str, rows: u64) {
    let registry = ferry::registry();
    let source = registry.build_source(&source).expect("source");
    let sink = registry.build_sink(&sink).expect("sink");
    let state = tempfile::tempdir().unwrap();
    let rt = testkit::runtime(Arc::clone(&source), Arc::clone(&sink), state.path());
    let mut sc = StreamConfig::named(stream);
    sc.destination = Some(to.into());
    sc.mode = Some(WriteMode::Overwrite);
    let report = testkit::sync(&rt, &[sc], ("source", "destination")).await;
    assert_eq!(
        report.status,
        Status::Succeeded,
        "{stream} → {to}: {:?}",
        report.streams[0].error
    );
    assert_eq!(report.rows_committed(), rows, "{stream} → {to}");
}

const CREATE: &str = "
CREATE TABLE src (
    id bigint PRIMARY KEY,
    i2 smallint, i4 integer, i8 bigint,
    f4 real, f8 double precision,
    big numeric(38,10), cents numeric(12,2),
    t text, vc varchar(40), ch char(5),
    flag boolean,
    d date, ts timestamp(6), tstz timestamptz,
    doc jsonb, js json,
    u uuid, bin bytea,
    ints integer[], texts text[]
)";

/// One row per line: typical values, all NULL, extremes and empties, unicode, zones.
const ROWS: &str = r#"
INSERT INTO src VALUES
(1, 7, 42, 1234567890123, 0.1, 0.1, 12345.6789012345, 19.99,
 'Ada Lovelace', 'short', 'ab', true,
 '2024-02-29', '2024-05-01 12:00:00.25', '2024-05-01 12:00:00.25+00',
 '{"tags": ["a", "b"], "n": 1}', '{"b": 1, "a": [true, null]}',
 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x0001ff', '{1,2,3}', '{x,y}'),
(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL),
(3, -32768, 2147483647, -9223372036854775808, 3.4028235e38, 1.7976931348623157e308,
 9999999999999999999999999999.9999999999, -9999999999.99,
 '', '', '', false,
 '1000-01-01', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999+00',
 '{}', '[]', '00000000-0000-0000-0000-000000000000', '\x', '{}', '{}'),
(4, 0, -1, 9223372036854775807, -1.5e-30, 1e-300,
 -0.0000000001, 0.01,
 E'Zoë 🚀 日本語 \t tab \n newline "quotes" \\ backslash '' apostrophe', 'ñandú 🦆', 'ü ',
 true,
 '9999-12-31', '2024-02-29 23:59:59.999999', '2024-03-10 02:30:00.123456-08',
 '{"emoji": "😀", "nested": {"a": [1, 2.5, null]}, "s": "line\nbreak"}', '"just a string"',
 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '\x00', '{1,NULL,3}', '{"a,b","",NULL,"ü \"q\""}'),
(5, 1, 1, 1, 1, 1, -1234567890123456789012345678.0123456789, -0.01,
 NULL, '', NULL, NULL,
 '1970-01-01', '1969-12-31 23:59:59.5', '2024-06-01 12:00:00+05:30',
 'null', '123.456', '123e4567-e89b-12d3-a456-426614174000', '\xdeadbeef', '{-2147483648}', '{""}'),
(6, 2, 2, 2, 2, 2, 0, 0,
 '  spaces  ', 'x', 'abcde', false,
 '2000-01-01', '2000-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999-11:30',
 '[1, "two", {"three": 3}]', '{"a": {"b": {"c": {}}}}', NULL, NULL, NULL, NULL);
ALTER TABLE src ADD COLUMN n numeric, ADD COLUMN tm time, ADD COLUMN iv interval;
UPDATE src SET n = id * -1.000000001, tm = '12:34:56.789'::time + id * interval '1 hour',
               iv = id * interval '1 day 2 hours' WHERE id <> 2
"#;

/// The source's columns, and each back in the first table's type, for `EXCEPT`.
const COLUMNS: &str = "id, i2, i4, i8, f4, f8, big, cents, t, vc, ch, flag, d, ts, tstz, \
                       doc, js::jsonb, u, bin, to_jsonb(ints), to_jsonb(texts), n, to_jsonb(tm), iv::text";
const BACK: &str = "id, i2::smallint, i4::integer, i8, f4::real, f8, big, cents, t, vc, \
                    ch::char(5), flag, d, ts::timestamp, tstz, doc, js::jsonb, u::uuid, bin, \
                    ints, texts, n, tm, iv";

async fn text_rows(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_survives_postgres_to_mysql_to_postgres() {
    let tag = db::fresh("ferry_rt");
    let places = Places {
        schema: tag.clone(),
        database: tag.clone(),
    };
    let pgc = pg().await;
    pgc.batch_execute(&format!(
        "CREATE SCHEMA \"{0}\"; SET search_path = \"{0}\"; {CREATE}; {ROWS}; ANALYZE src",
        places.schema
    ))
    .await
    .expect("create the source table");
    let mut m = mysql().await;
    m.query_drop(format!("CREATE DATABASE `{}`", places.database))
        .await
        .expect("create the MySQL database");

    let pg_cfg = format!("url = \"{}\"\n", pg_url());
    let my_cfg = format!("url = \"{}\"\n", mysql_url_for(&places.database));
    // PostgreSQL → MySQL, the read split in two key ranges
    sync(
        connector(
            "postgres",
            &format!(
                "{pg_cfg}schemas = [\"{}\"]\nparallel = [{{ stream = \"src\", partitions = 2 }}]\n",
                places.schema
            ),
        ),
        connector("mysql", &my_cfg),
        "src",
        "mid",
        6,
    )
    .await;
    // the MySQL table's columns, as the mapping documents them
    let cols: Vec<(String, String)> = m
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'mid' ORDER BY ORDINAL_POSITION",
            (places.database.as_str(),),
        )
        .await
        .unwrap();
    let ty = |c: &str| {
        cols.iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.to_lowercase())
            .unwrap_or_else(|| panic!("no column {c} in {cols:?}"))
    };
    assert_eq!(ty("i2"), "bigint(20)");
    assert_eq!(ty("big"), "decimal(38,10)");
    assert_eq!(ty("tstz"), "datetime(6)");
    assert_eq!(ty("bin"), "longblob");
    assert_eq!(ty("t"), "longtext");
    let _ = m.disconnect().await;

    // MySQL → PostgreSQL
    sync(
        connector("mysql", &my_cfg),
        connector(
            "postgres",
            &format!("{pg_cfg}schema = \"{}\"\n", places.schema),
        ),
        "mid",
        "back",
        6,
    )
    .await;

    let types = text_rows(
        &pgc,
        &format!(
            "SELECT column_name || ' ' || data_type || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '') \
             FROM information_schema.columns WHERE table_schema = '{}' AND table_name = 'back' \
             AND column_name IN ('big', 'tstz', 'doc', 'ints', 'bin', 'u', 'i2', 'iv') ORDER BY column_name",
            places.schema
        ),
    )
    .await;
    assert_eq!(
        types,
        vec![
            "big numeric(38,10)",
            "bin bytea",
            "doc jsonb",
            "i2 bigint(64,0)",
            "ints jsonb",
            // an interval travels as its text (`1 day 02:00:00`), not a JSON string
            "iv text",
            "tstz timestamp with time zone",
            "u text",
        ]
    );

    let count = text_rows(&pgc, "SELECT count(*) FROM back").await;
    assert_eq!(count, vec!["6"]);
    let lost = text_rows(
        &pgc,
        &format!("SELECT {COLUMNS} FROM src EXCEPT SELECT {BACK} FROM back ORDER BY 1"),
    )
    .await;
    let changed = text_rows(
        &pgc,
        &format!("SELECT {BACK} FROM back EXCEPT SELECT {COLUMNS} FROM src ORDER BY 1"),
    )
    .await;
    assert!(
        lost.is_empty() && changed.is_empty(),
        "rows differ after the round trip\nfirst table:\n{}\nfinal table:\n{}",
        lost.join("\n"),
        changed.join("\n")
    );
    // `EXCEPT` compares values; the text of strings must be exactly equal too
    let texts = text_rows(
        &pgc,
        "SELECT count(*) FROM src JOIN back USING (id) \
         WHERE src.t IS NOT DISTINCT FROM back.t AND src.vc IS NOT DISTINCT FROM back.vc \
         AND (src.t IS NULL) = (back.t IS NULL) AND (src.vc = '') IS NOT DISTINCT FROM (back.vc = '')",
    )
    .await;
    assert_eq!(texts, vec!["6"]);
    // the comparison sees a change in the last digit of a 38-digit decimal
    pgc.batch_execute("UPDATE back SET big = big - 0.0000000001 WHERE id = 3")
        .await
        .unwrap();
    let lost = text_rows(
        &pgc,
        &format!("SELECT id FROM (SELECT {COLUMNS} FROM src EXCEPT SELECT {BACK} FROM back) d"),
    )
    .await;
    assert_eq!(lost, vec!["3"]);
    drop(places);
}
