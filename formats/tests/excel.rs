//! The Excel reader on workbooks written by independent writers (XlsxWriter, xlwt, odfpy;
//! see `ferry_testkit::python::workbooks`): inference, dates in both systems, formulas
//! as saved values, merged and empty cells, ranges and header rows, rejected cells.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ferry_core::{FerryType, Message, Rejected};
use ferry_formats::codec::{
    infer_excel, sheet_names, CellRange, ExcelOptions, FormatReader, InferOptions, Sheet,
};

fn fixtures() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        ferry_testkit::python::workbooks(dir.path());
        dir
    })
    .path()
}

fn schema(file: &str, options: &ExcelOptions, infer: &InferOptions) -> SchemaRef {
    let path = fixtures().join(file);
    infer_excel(File::open(&path).unwrap(), Some(file), options, infer).unwrap()
}

fn types(schema: &SchemaRef) -> Vec<(String, FerryType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), FerryType::of(f).unwrap()))
        .collect()
}

/// Every row as text cells (`None`: NULL), the rejected rows, and the rows' positions.
fn read(
    file: &str,
    schema: SchemaRef,
    options: &ExcelOptions,
) -> (Vec<Vec<Option<String>>>, Vec<Rejected>, Vec<u64>) {
    let path = fixtures().join(file);
    let reader =
        FormatReader::<File>::excel(File::open(&path).unwrap(), Some(file), schema, options)
            .unwrap()
            .with_batch_size(4);
    let (mut rows, mut rejected, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    for m in reader {
        match m.unwrap() {
            Message::Batch(b) => rows.extend(texts(&b)),
            Message::Rejected(r) => rejected.push(r),
            Message::Positions(p) => {
                assert_eq!(p.file.as_deref(), Some(file));
                lines.extend(p.lines);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rows.len(), lines.len());
    (rows, rejected, lines)
}

fn texts(b: &RecordBatch) -> Vec<Vec<Option<String>>> {
    (0..b.num_rows())
        .map(|r| {
            b.columns()
                .iter()
                .zip(b.schema().fields())
                .map(|(a, f)| {
                    let mut s = String::new();
                    ferry_core::values::write_text(a, FerryType::of(f).unwrap(), r, &mut s)
                        .then_some(s)
                })
                .collect()
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn first_sheet_is_typed_like_csv_with_dates_formulas_and_merged_cells() {
    let options = ExcelOptions::default();
    let schema = schema("orders.xlsx", &options, &InferOptions::default());
    use FerryType::*;
    let want = [
        ("id", Int64),
        ("name", String),
        // row 14 holds `n/a`: inference sees text, as it would in a CSV
        ("amount", String),
        ("day", Date),
        ("at", Timestamp),
        ("double", String),
        ("note", String),
    ];
    let want: Vec<_> = want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    assert_eq!(types(&schema), want);

    // with the numbers typed, row 14's text is rejected, naming sheet, row and cell
    let infer = InferOptions {
        overrides: vec![("amount".into(), Float64), ("double".into(), Float64)],
        ..InferOptions::default()
    };
    let schema = self::schema("orders.xlsx", &options, &infer);
    let (rows, rejected, lines) = read("orders.xlsx", schema, &options);
    assert_eq!(rows.len(), 13);
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
    assert_eq!(
        rows[0],
        [
            s("1"),
            s("Zoë Ñandú"),
            s("10.25"),
            s("2024-01-01"),
            s("2024-01-01T08:30:15Z"),
            s("20.5"),
            s("first")
        ]
    );
    // the formula's saved value, never the formula
    assert_eq!(rows[12][5], s("280.5"));
    // the merged note is in its top-left cell (row 3) and the cell under it is NULL
    let notes: Vec<_> = rows.iter().take(4).map(|r| r[6].clone()).collect();
    assert_eq!(notes, [s("first"), s("merged note"), None, None]);
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(r.position.file.as_deref(), Some("orders.xlsx"));
    assert_eq!((r.position.line, r.position.column), (Some(14), Some(3)));
    assert!(
        r.message
            .starts_with("sheet \"Q1\", row 14, cell C14: column `amount`"),
        "{}",
        r.message
    );
    assert!(r.raw.contains("n/a"), "{}", r.raw);
    assert_eq!(r.position.key.as_deref(), Some("sheet \"Q1\", cell C14"));
}

#[test]
fn sheets_by_name_and_position() {
    let names = sheet_names(File::open(fixtures().join("orders.xlsx")).unwrap(), None).unwrap();
    assert_eq!(names, ["Q1", "Q2"]);
    for sheet in [
        Sheet::Name("Q2".into()),
        Sheet::Name("q2".into()),
        Sheet::Index(2),
    ] {
        let options = ExcelOptions {
            sheet,
            ..ExcelOptions::default()
        };
        let schema = schema("orders.xlsx", &options, &InferOptions::default());
        let (rows, rejected, _) = read("orders.xlsx", schema, &options);
        assert!(rejected.is_empty());
        assert_eq!(rows, [[s("1"), s("Genève")], [s("2"), s("Zürich")]]);
    }
    let options = ExcelOptions {
        sheet: Sheet::Name("Q20".into()),
        ..ExcelOptions::default()
    };
    let path = fixtures().join("orders.xlsx");
    let err = infer_excel(
        File::open(&path).unwrap(),
        None,
        &options,
        &InferOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no sheet \"Q20\" (sheets: \"Q1\", \"Q2\")"),
        "{err}"
    );
    assert!(
        err.to_string().contains("did you mean `sheet = \"Q2\"`?"),
        "{err}"
    );
}

#[test]
fn the_1904_date_system() {
    let options = ExcelOptions::default();
    let schema = schema("mac.xlsx", &options, &InferOptions::default());
    assert_eq!(FerryType::of(schema.field(1)), Some(FerryType::Date));
    let (rows, _, _) = read("mac.xlsx", schema, &options);
    assert_eq!(rows, [[s("1"), s("2024-01-31")], [s("2"), s("1999-12-31")]]);
}

#[test]
fn range_and_header_row() {
    // B3:D6: the header on row 3 (the range's first row), the title and notes left out
    let options = ExcelOptions {
        range: Some(CellRange::parse("B3:D6").unwrap()),
        ..ExcelOptions::default()
    };
    let schema = schema("report.xlsx", &options, &InferOptions::default());
    use FerryType::*;
    assert_eq!(
        types(&schema),
        [
            ("sku".to_string(), String),
            ("qty".to_string(), Int64),
            ("price".to_string(), Float64)
        ]
    );
    let (rows, _, lines) = read("report.xlsx", schema, &options);
    assert_eq!(lines, [4, 5, 6]);
    assert_eq!(rows[2], [s("C-3"), s("7"), s("0.5")]);
    // header_row alone: the used columns (A..G) from row 3 down, the total row too
    let options = ExcelOptions {
        header_row: Some(3),
        range: Some(CellRange::parse("B1:C").unwrap()),
        ..ExcelOptions::default()
    };
    let schema = self::schema("report.xlsx", &options, &InferOptions::default());
    let (rows, _, lines) = read("report.xlsx", schema, &options);
    assert_eq!(lines, [4, 5, 6, 8]);
    assert_eq!(rows[3], [s("total"), s("11")]);
    // no header: column_N names
    let options = ExcelOptions {
        header_row: Some(0),
        range: Some(CellRange::parse("B4:C5").unwrap()),
        ..ExcelOptions::default()
    };
    let schema = self::schema("report.xlsx", &options, &InferOptions::default());
    assert_eq!(
        types(&schema),
        [
            ("column_1".to_string(), String),
            ("column_2".to_string(), Int64)
        ]
    );
}

#[test]
fn xls_and_ods() {
    for file in ["orders.xls", "orders.ods"] {
        let options = ExcelOptions::default();
        let schema = schema(file, &options, &InferOptions::default());
        let t = types(&schema);
        assert_eq!(t[0].1, FerryType::Int64, "{file}");
        assert_eq!(t[2].1, FerryType::Date, "{file}");
        let (rows, rejected, _) = read(file, schema, &options);
        assert!(rejected.is_empty(), "{file}");
        assert_eq!(rows.len(), 2, "{file}");
        assert_eq!(rows[0][1], s("Zoë"), "{file}");
    }
    let (rows, ..) = read(
        "orders.xls",
        schema(
            "orders.xls",
            &ExcelOptions::default(),
            &InferOptions::default(),
        ),
        &ExcelOptions::default(),
    );
    assert_eq!(rows[0][2], s("2024-02-29"));
    let (rows, ..) = read(
        "orders.ods",
        schema(
            "orders.ods",
            &ExcelOptions::default(),
            &InferOptions::default(),
        ),
        &ExcelOptions::default(),
    );
    assert_eq!(rows[1], [s("2"), s("Léa"), s("2024-03-02")]);
}

#[test]
fn damaged_workbooks_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("orders.xlsx")).unwrap();
    for (name, data) in [
        ("empty.xlsx", Vec::new()),
        ("text.xlsx", b"id,name\n1,a\n".to_vec()),
        ("cut.xlsx", bytes[..bytes.len() / 2].to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let err = infer_excel(
            File::open(&path).unwrap(),
            Some(name),
            &ExcelOptions::default(),
            &InferOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not a readable workbook"),
            "{name}: {err}"
        );
    }
}
