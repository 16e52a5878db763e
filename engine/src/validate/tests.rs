//! The checks through [`Validator`], as the runtime uses them.

use std::sync::Arc;

use arrow_array::RecordBatch;
use serde::Deserialize;

use super::*;
use ferry_core::types::FerryType;
use ferry_core::ErrorKind;

fn batch() -> RecordBatch {
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::String.field("email", true),
        FerryType::Float64.field("amount", true),
        FerryType::String.field("status", true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3, 3])),
            Arc::new(arrow_array::StringArray::from(vec![
                Some("a@x.io"),
                None,
                Some("bad"),
                Some("c@x.io"),
            ])),
            Arc::new(arrow_array::Float64Array::from(vec![
                Some(5.0),
                Some(-1.0),
                Some(7.0),
                None,
            ])),
            Arc::new(arrow_array::StringArray::from(vec![
                Some("paid"),
                Some("paid"),
                Some("lost"),
                Some("open"),
            ])),
        ],
    )
    .unwrap()
}

#[test]
fn max_length_counts_characters_of_text_from_the_offsets() {
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        FerryType::String.field("s", true)
    ]));
    let values = arrow_array::StringArray::from(vec![
        Some("toolongvalue"),
        Some("üüü"),
        Some("üüüü"),
        None,
        Some("abc"),
        Some("abcd"),
        Some(""),
    ]);
    // a slice: its offsets do not start at 0
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)])
        .unwrap()
        .slice(1, 6);
    let checks = parse(r#"checks = [{ type = "max_length", column = "s", max = 3 }]"#);
    let mut v = Validator::new(&checks, &schema).unwrap();
    let out = v.check(batch).unwrap();
    let bad: Vec<(usize, &str)> = out
        .rejected
        .iter()
        .map(|(_, f)| (f.row, f.message.as_str()))
        .collect();
    assert_eq!(
        bad,
        vec![
            (1, "4 characters, more than 3"),
            (4, "4 characters, more than 3")
        ]
    );
    assert_eq!(out.batch.num_rows(), 4);
}

fn parse(toml_text: &str) -> Vec<CheckConfig> {
    #[derive(Deserialize)]
    struct W {
        checks: Vec<CheckConfig>,
    }
    toml::from_str::<W>(toml_text).unwrap().checks
}

#[test]
fn each_check_passes_and_fails() {
    let cases = [
        (
            r#"checks = [{ type = "not_null", columns = ["email"] }]"#,
            vec![2],
        ),
        (
            r#"checks = [{ type = "unique", columns = ["id"] }]"#,
            vec![3],
        ),
        (
            r#"checks = [{ type = "regex", column = "email", pattern = "^[^@]+@[^@]+$" }]"#,
            vec![3],
        ),
        (
            r#"checks = [{ type = "range", column = "amount", min = 0 }]"#,
            vec![2],
        ),
        (
            r#"checks = [{ type = "allowed", column = "status", values = ["paid", "open"] }]"#,
            vec![3],
        ),
        (
            r#"checks = [{ type = "max_length", column = "status", max = 3 }]"#,
            vec![1, 2, 3, 3],
        ),
    ];
    for (cfg, bad_ids) in cases {
        let mut v = Validator::new(&parse(cfg), &batch().schema()).unwrap();
        let out = v.check(batch()).unwrap();
        let ids: Vec<i64> = out
            .rejected
            .iter()
            .map(|(row, _)| row["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, bad_ids, "{cfg}");
        assert_eq!(
            out.batch.num_rows() + out.rejected.len(),
            4,
            "{cfg}: rows lost"
        );
        assert_eq!(v.report()[0].failed as usize, bad_ids.len());
    }
}

#[test]
fn warn_keeps_rows_and_fail_stops() {
    let mut v = Validator::new(
        &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "warn" }]"#),
        &batch().schema(),
    )
    .unwrap();
    let out = v.check(batch()).unwrap();
    assert_eq!(out.batch.num_rows(), 4);
    assert_eq!(v.report()[0].failed, 1);
    let mut v = Validator::new(
        &parse(r#"checks = [{ type = "not_null", columns = ["email"], severity = "fail" }]"#),
        &batch().schema(),
    )
    .unwrap();
    assert_eq!(v.check(batch()).unwrap_err().kind(), ErrorKind::DataInvalid);
}

#[test]
fn row_count_and_unknown_column() {
    let mut v = Validator::new(
        &parse(r#"checks = [{ type = "row_count", min = 10 }]"#),
        &batch().schema(),
    )
    .unwrap();
    v.check(batch()).unwrap();
    assert!(v.finish().unwrap_err().to_string().contains("4 rows"));
    let e = Validator::new(
        &parse(r#"checks = [{ type = "not_null", columns = ["emial"] }]"#),
        &batch().schema(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("did you mean `email`"), "{e}");
}

fn with_text(col: &str, values: Vec<Option<&str>>) -> RecordBatch {
    let n = values.len() as i64;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        FerryType::Int64.field("id", false),
        FerryType::String.field(col, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow_array::Int64Array::from((1..=n).collect::<Vec<_>>())),
            Arc::new(arrow_array::StringArray::from(values)),
        ],
    )
    .unwrap()
}

fn rejected_ids(out: &Outcome) -> Vec<i64> {
    out.rejected
        .iter()
        .map(|(row, _)| row["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn type_check_parses_text_like_the_sources() {
    let b = with_text(
        "zip",
        vec![Some("75001"), Some("7500A"), None, Some(" 12 ")],
    );
    let mut v = Validator::new(
        &parse(r#"checks = [{ type = "type", column = "zip", is = "int64" }]"#),
        &b.schema(),
    )
    .unwrap();
    let out = v.check(b.clone()).unwrap();
    assert_eq!(rejected_ids(&out), [2]);
    assert!(out.rejected[0]
        .1
        .message
        .contains("`7500A` is not a valid int64"));
    let mut v = Validator::new(
        &parse(r#"checks = [{ type = "type", column = "zip", is = "date" }]"#),
        &b.schema(),
    )
    .unwrap();
    assert_eq!(rejected_ids(&v.check(b.clone()).unwrap()), [1, 2, 4]);
    let e = Validator::new(
        &parse(r#"checks = [{ type = "type", column = "id", is = "int64" }]"#),
        &b.schema(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("not text"), "{e}");
    assert!(Validator::new(
        &parse(r#"checks = [{ type = "type", column = "zip", is = "integr" }]"#),
        &b.schema()
    )
    .is_err());
}

#[test]
fn referential_uses_values_another_stream_delivered() {
    let customers = with_text("email", vec![Some("a"), Some("b")]);
    let orders = {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Int64.field("customer_id", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int64Array::from(vec![10, 11, 12, 13])),
                Arc::new(arrow_array::Int64Array::from(vec![
                    Some(1),
                    Some(3),
                    None,
                    Some(2),
                ])),
            ],
        )
        .unwrap()
    };
    let order_checks = parse(
        r#"checks = [{ type = "referential", column = "customer_id", stream = "customers", stream_column = "id" }]"#,
    );
    let no_checks: Vec<CheckConfig> = Vec::new();
    let (os, cs) = (orders.schema(), customers.schema());
    let (refs, waves) = References::plan(&[
        ("orders", os.as_ref(), &order_checks),
        ("customers", cs.as_ref(), &no_checks),
    ])
    .unwrap();
    assert_eq!(waves, vec![vec![1], vec![0]], "customers runs first");

    // customers: no checks of its own, but it collects `id` for orders
    let ctx = |stream: &str| RunContext {
        stream: stream.into(),
        references: Some(refs.clone()),
        ..Default::default()
    };
    let mut c = Validator::for_run(&no_checks, &cs, &ctx("customers")).unwrap();
    assert!(!c.is_empty());
    c.check(customers).unwrap();
    // orders before customers published: a clear error
    let mut o = Validator::for_run(&order_checks, &os, &ctx("orders")).unwrap();
    let e = o.check(orders.clone()).unwrap_err();
    assert!(e.to_string().contains("did not deliver"), "{e}");
    c.publish();
    let mut o = Validator::for_run(&order_checks, &os, &ctx("orders")).unwrap();
    let out = o.check(orders.clone()).unwrap();
    assert_eq!(
        out.rejected
            .iter()
            .map(|(r, _)| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [11]
    );
    assert!(out.rejected[0].1.message.contains("not in `customers.id`"));

    // outside a run: a config error at the first batch
    let mut o = Validator::new(&order_checks, &os).unwrap();
    assert_eq!(
        o.check(orders).unwrap_err().kind(),
        ErrorKind::ConfigInvalid
    );

    // planning errors: each plan of `(orders' checks, customers' checks)` fails saying so
    let referential = |column: &str, stream: &str, stream_column: &str| {
        parse(&format!(
            r#"checks = [{{ type = "referential", column = "{column}", stream = "{stream}", stream_column = "{stream_column}" }}]"#
        ))
    };
    let e = References::plan(&[("orders", os.as_ref(), &order_checks)])
        .err()
        .unwrap();
    assert!(e.to_string().contains("not synced in this run"), "{e}");
    for (orders_checks, customers_checks, says) in [
        (
            referential("customer_id", "customers", "idd"),
            no_checks.clone(),
            "did you mean `id`",
        ),
        (
            order_checks.clone(),
            referential("id", "orders", "id"),
            "cycle",
        ),
    ] {
        let e = References::plan(&[
            ("orders", os.as_ref(), &orders_checks),
            ("customers", cs.as_ref(), &customers_checks),
        ])
        .err()
        .unwrap();
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn freshness_checks_the_newest_value_at_the_end() {
    let now = chrono::Utc::now().timestamp_micros();
    let ts = |v: Vec<Option<i64>>| {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            FerryType::Timestamp.field("at", true)
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(
                arrow_array::TimestampMicrosecondArray::from(v).with_timezone("UTC"),
            )],
        )
        .unwrap()
    };
    let hour = 3_600_000_000i64;
    let cfg = parse(r#"checks = [{ type = "freshness", column = "at", max_age = "2h" }]"#);
    let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
    v.check(ts(vec![Some(now - 30 * hour), None])).unwrap();
    v.check(ts(vec![Some(now - hour)])).unwrap();
    v.finish().unwrap();
    let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
    v.check(ts(vec![Some(now - 30 * hour)])).unwrap();
    let e = v.finish().unwrap_err();
    assert!(e.to_string().contains("1d 6h old"), "{e}");
    let mut v = Validator::new(&cfg, &ts(vec![]).schema()).unwrap();
    assert!(v
        .finish()
        .unwrap_err()
        .to_string()
        .contains("no value of `at`"));
    let warn = parse(
        r#"checks = [{ type = "freshness", column = "at", max_age = "1h30m", severity = "warn" }]"#,
    );
    let mut v = Validator::new(&warn, &ts(vec![]).schema()).unwrap();
    v.check(ts(vec![Some(now - 2 * hour)])).unwrap();
    v.finish().unwrap();
    assert_eq!(v.report()[0].failed, 1);
    for bad in ["24", "h", "3x", "0s", ""] {
        let cfg = parse(&format!(
            r#"checks = [{{ type = "freshness", column = "at", max_age = "{bad}" }}]"#
        ));
        assert!(Validator::new(&cfg, &ts(vec![]).schema()).is_err(), "{bad}");
    }
    assert!(
        Validator::new(&cfg, &batch().schema()).is_err(),
        "no column `at`"
    );
    assert_eq!(parse_duration("1h30m"), chrono::TimeDelta::try_minutes(90));
    assert_eq!(parse_duration("2w"), chrono::TimeDelta::try_days(14));
}

#[test]
fn row_count_max_change_against_the_last_run() {
    let cfg = parse(r#"checks = [{ type = "row_count", max_change = 0.5 }]"#);
    let run = |previous: Option<u64>| {
        let ctx = RunContext {
            previous_rows: previous,
            ..Default::default()
        };
        let mut v = Validator::for_run(&cfg, &batch().schema(), &ctx).unwrap();
        v.check(batch()).unwrap();
        assert_eq!(v.rows(), 4);
        v.finish()
    };
    run(None).unwrap();
    run(Some(6)).unwrap(); // -33%
    run(Some(3)).unwrap(); // +33%
    let e = run(Some(10)).unwrap_err(); // -60%
    assert!(e.to_string().contains("4 rows against 10"), "{e}");
    assert!(run(Some(2)).is_err()); // +100%
    let neg = parse(r#"checks = [{ type = "row_count", max_change = -1 }]"#);
    assert!(Validator::new(&neg, &batch().schema()).is_err());
}

#[test]
fn unique_over_several_columns_and_strings() {
    let cfg = parse(r#"checks = [{ type = "unique", columns = ["status", "id"] }]"#);
    let mut v = Validator::new(&cfg, &batch().schema()).unwrap();
    assert!(v.check(batch()).unwrap().rejected.is_empty());
    assert_eq!(
        v.check(batch()).unwrap().rejected.len(),
        4,
        "second batch repeats"
    );
    let cfg = parse(r#"checks = [{ type = "unique", columns = ["email"] }]"#);
    let mut v = Validator::new(&cfg, &batch().schema()).unwrap();
    assert!(v.check(batch()).unwrap().rejected.is_empty());
    let b = with_text("email", vec![None, None, Some("x"), Some("x")]);
    let mut v = Validator::new(&cfg, &b.schema()).unwrap();
    assert_eq!(
        rejected_ids(&v.check(b).unwrap()),
        [2, 4],
        "NULLs are equal"
    );
}
