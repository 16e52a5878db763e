//! A client drop end to end (issue 20), with the real `ferry` binary, a real OpenSSH
//! server (the kit's sshd), GnuPG on the client's side and PostgreSQL as the warehouse.
//!
//! The client puts three files in `outgoing/` on the SFTP server, none of them written by
//! Ferry: a Windows-1252 CSV with `;` separators and decimal commas (Python's `csv` with
//! `encoding="cp1252"`), a workbook of two sheets (openpyxl) and a zip of a CSV (Python's
//! `zipfile`) that the client's `gpg` encrypted to our key and signed. One sync per file
//! loads it into PostgreSQL; the values are checked in PostgreSQL, accents, decimals and
//! dates included. Each file is archived to `outgoing/processed/` only once its rows are
//! committed: a run that fails its checks leaves it where it was. Then Ferry delivers the
//! customers back as a CSV encrypted to the client and signed by us, which the client's
//! `gpg --decrypt` opens.

mod support;

use std::path::Path;
use std::process::Output;

use ferry_testkit::gpg::Gpg;
use ferry_testkit::python::run_python;
use ferry_testkit::sftp_server::{SftpServer, PASSWORD, USER};
use support::cli::{ferry_in, out, Setup, MASTER_KEY};
use support::{db, folder, pgp};

const US: &str = "ferry@example.com";
const CLIENT: &str = "client@example.com";
const OUR_PASS: &str = "correct horse battery";

/// The client's files, written by Python: `customers.csv` (cp1252, `;`, `1.234,56`),
/// `book.xlsx` (sheets `orders` and `products`, openpyxl) and `payments.zip`
/// (`export/payments.csv` and a `README.txt` that is not data).
const FIXTURES_PY: &str = r#"
import csv, datetime as dt, sys, zipfile
import openpyxl

out = sys.argv[1]
with open(f"{out}/customers.csv", "w", encoding="cp1252", newline="") as f:
    w = csv.writer(f, delimiter=";")
    w.writerow(["id", "name", "city", "balance", "since"])
    w.writerow([1, "Müller", "Besançon", "1.234,56", "2024-03-15"])
    w.writerow([2, "Dupont; Zoë", "Saint-Étienne", "-7,05", "2023-12-31"])
    w.writerow([3, "Øster € AG", "Ærøskøbing", "1.000.000,00", "2024-02-29"])

wb = openpyxl.Workbook()
orders = wb.active
orders.title = "orders"
orders.append(["id", "customer", "amount", "ordered"])
orders.append([1, "Müller", 1234.56, dt.date(2024, 1, 31)])
orders.append([2, "Société Générale", 0.1, dt.date(2024, 2, 29)])
orders.append([3, "Zoë Ñandú", 99999.99, dt.date(1999, 12, 31)])
products = wb.create_sheet("products")
products.append(["id", "label", "price", "launched"])
products.append([10, "Crème brûlée", 4.5, dt.date(2023, 6, 1)])
products.append([11, "Smørrebrød", 12.75, dt.date(2024, 1, 2)])
for sheet in (orders, products):
    for (cell,) in sheet.iter_rows(min_row=2, min_col=4, max_col=4):
        cell.number_format = "yyyy-mm-dd"
wb.save(f"{out}/book.xlsx")

with zipfile.ZipFile(f"{out}/payments.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(
        "export/payments.csv",
        "id,customer_id,paid_on,amount,memo\n"
        "1,1,2024-04-02,1234.56,Facture n° 42\n"
        "2,3,2024-04-03,0.99,Überweisung\n",
    )
    z.writestr("export/README.txt", "not data\n")
"#;

/// The drop: the server, both keyrings, the config folder and the PostgreSQL schema
/// (dropped at the end).
struct ClientDrop {
    server: SftpServer,
    us: Gpg,
    client: Gpg,
    folder: tempfile::TempDir,
    schema: String,
}

impl Drop for ClientDrop {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        db::block(async move {
            let _ = db::pg()
                .await
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await;
        });
    }
}

impl ClientDrop {
    /// The server holding the client's files; our key in the vault, the client's public
    /// key in `keys/client.asc`.
    fn new() -> ClientDrop {
        let server = SftpServer::start();
        let (us, client) = (Gpg::new(), Gpg::new());
        us.gen_key(US, Some(OUR_PASS));
        client.gen_key(CLIENT, None);
        client.import(&us.export_public(US));
        us.import(&client.export_public(CLIENT));
        let folder = tempfile::tempdir().unwrap();
        let d = ClientDrop {
            server,
            folder,
            schema: db::fresh("client_drop"),
            us,
            client,
        };
        let dir = d.dir();
        std::fs::create_dir(dir.join("keys")).unwrap();
        folder::write(dir, "keys/client.asc", d.client.export_public(CLIENT));
        let secret = d.us.export_secret(US, Some(OUR_PASS));
        for (name, value) in [
            ("acme_sftp_password", PASSWORD),
            ("our_pgp_key", secret.as_str()),
            ("our_pgp_pass", OUR_PASS),
        ] {
            let o = d.ferry(&["secrets", "set", name], Some(value));
            assert!(o.status.success(), "{}", out(&o));
        }
        d.put_files();
        d
    }

    fn dir(&self) -> &Path {
        self.folder.path()
    }

    fn ferry(&self, args: &[&str], stdin: Option<&str>) -> Output {
        ferry_in(self.dir()).master_key(MASTER_KEY).run(args, stdin)
    }

    /// The client makes its files and puts them in `outgoing/`.
    fn put_files(&self) {
        let made = tempfile::tempdir().unwrap();
        let m = made.path();
        run_python(
            FIXTURES_PY,
            &[m.to_str().unwrap()],
            &[("openpyxl", "openpyxl")],
        );
        // the zip, encrypted to us and signed by the client
        self.client.encrypt(
            &m.join("payments.zip"),
            &m.join("payments.zip.gpg"),
            US,
            Some((CLIENT, None)),
            false,
        );
        for name in ["customers.csv", "book.xlsx", "payments.zip.gpg"] {
            let bytes = std::fs::read(m.join(name)).unwrap();
            self.server.put(&format!("outgoing/{name}"), &bytes);
        }
    }

    /// How Ferry logs in to the client's server.
    fn login(&self) -> String {
        format!(
            "type = \"sftp\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
             password = \"${{secret:acme_sftp_password}}\"\nhost_key = \"{}\"\n",
            self.server.port(),
            self.server.host_key()
        )
    }

    /// A sync of `source` (the source's own fields) into the schema; each of `streams`
    /// upserted by `id`, incrementally, and failing a check on its first row when `fail`.
    fn load_config(&self, source: &str, streams: &[&str], fail: bool, after_read: &str) -> String {
        let mut toml = format!(
            "client = \"acme\"\n\n[source]\n{}{source}after_read = \"{after_read}\"\n\n\
             [destination]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{}\"\n",
            self.login(),
            db::pg_url(),
            self.schema
        );
        for s in streams {
            toml.push_str(&format!(
                "\n[[streams]]\nname = \"{s}\"\nmode = \"upsert\"\nprimary_key = [\"id\"]\nincremental = true\n"
            ));
            if fail {
                toml.push_str(
                    "checks = [{ type = \"range\", column = \"id\", max = 0, severity = \"fail\" }]\n",
                );
            }
        }
        toml
    }

    /// Runs `config` (written as `name`) and returns its output.
    fn sync(&self, name: &str, config: &str) -> Output {
        folder::write(self.dir(), name, config);
        self.ferry(&["sync", "-c", name], None)
    }

    fn outgoing(&self, name: &str) -> bool {
        self.server.root().join("outgoing").join(name).exists()
    }

    fn archived(&self, name: &str) -> bool {
        self.server
            .root()
            .join("outgoing/processed")
            .join(name)
            .exists()
    }

    /// Loads one file: a run failing its checks leaves it in `outgoing/`; the next run
    /// loads it and archives it.
    fn load(&self, file: &str, source: &str, streams: &[&str]) {
        let config = format!("{}.toml", file.split('.').next().unwrap());
        let o = self.sync(&config, &self.load_config(source, streams, true, "archive"));
        assert!(
            !o.status.success(),
            "{file}: the range check should fail the run:\n{}",
            out(&o)
        );
        assert!(out(&o).contains("check range"), "{file}:\n{}", out(&o));
        assert!(
            self.outgoing(file) && !self.archived(file),
            "{file}: moved by a failed run:\n{}",
            out(&o)
        );
        let o = self.sync(
            &config,
            &self.load_config(source, streams, false, "archive"),
        );
        let text = out(&o);
        assert!(o.status.success(), "{file}:\n{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains(OUR_PASS),
            "{text}"
        );
        assert!(
            !self.outgoing(file) && self.archived(file),
            "{file}: not archived after the successful run:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "outgoing/{file} archived to outgoing/processed/{file}"
            )),
            "{text}"
        );
    }

    /// Checks that `sql` (every column cast to text, `{s}` the schema) gives rows `want`.
    fn assert_rows(&self, sql: &str, want: &[&[&str]]) {
        let want: Vec<Vec<String>> = want
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(self.rows(sql), want, "{sql}");
    }

    /// The rows of `sql` (every column cast to text by the query), NULL as `NULL`.
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let sql = sql.replace("{s}", &self.schema);
        db::block(async move {
            let client = db::pg().await;
            let rows = client
                .query(&sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.get::<_, Option<String>>(i)
                                .unwrap_or_else(|| "NULL".into())
                        })
                        .collect()
                })
                .collect()
        })
    }
}

#[test]
fn a_client_drop_over_sftp_loads_into_postgres_and_goes_back_pgp_encrypted() {
    let d = ClientDrop::new();

    // 1. the cp1252 `;` CSV with decimal commas (the delimiter found by sniffing)
    d.load(
        "customers.csv",
        "path = \"outgoing/customers*.csv\"\nstream = \"customers\"\n\
         encoding = \"windows-1252\"\ndecimal_separator = \",\"\nthousands_separator = \".\"\n\
         columns = { balance = \"decimal(12,2)\", since = \"date\" }\n",
        &["customers"],
    );
    d.assert_rows(
        "SELECT id::text, name, city, balance::text, since::text \
         FROM \"{s}\".customers ORDER BY id",
        &[
            &["1", "Müller", "Besançon", "1234.56", "2024-03-15"],
            &["2", "Dupont; Zoë", "Saint-Étienne", "-7.05", "2023-12-31"],
            &["3", "Øster € AG", "Ærøskøbing", "1000000.00", "2024-02-29"],
        ],
    );

    // 2. the workbook, both sheets in one sync: with `after_read = "archive"` the shared
    // workbook is archived once, after both streams committed it
    let sheet = |name: &str, columns: &str| {
        format!(
            "{{ name = \"{name}\", path = \"outgoing/book*.xlsx\", sheet = \"{name}\", columns = {{ {columns} }} }}"
        )
    };
    d.load(
        "book.xlsx",
        &format!(
            "streams = [{}, {}]\n",
            sheet("orders", "amount = \"decimal(12,2)\", ordered = \"date\""),
            sheet("products", "price = \"decimal(8,2)\", launched = \"date\"")
        ),
        &["orders", "products"],
    );
    d.assert_rows(
        "SELECT id::text, customer, amount::text, ordered::text \
         FROM \"{s}\".orders ORDER BY id",
        &[
            &["1", "Müller", "1234.56", "2024-01-31"],
            &["2", "Société Générale", "0.10", "2024-02-29"],
            &["3", "Zoë Ñandú", "99999.99", "1999-12-31"],
        ],
    );
    d.assert_rows(
        "SELECT id::text, label, price::text, launched::text \
         FROM \"{s}\".products ORDER BY id",
        &[
            &["10", "Crème brûlée", "4.50", "2023-06-01"],
            &["11", "Smørrebrød", "12.75", "2024-01-02"],
        ],
    );

    // 3. the zip, encrypted to us and signed by the client: decrypted with our key from
    // the vault, the signature required, the CSV inside read
    d.load(
        "payments.zip.gpg",
        "path = \"outgoing/payments*.zip.gpg\"\nstream = \"payments\"\ninner = \"export/*.csv\"\n\
         pgp_secret_key = \"${secret:our_pgp_key}\"\npgp_passphrase = \"${secret:our_pgp_pass}\"\n\
         pgp_verify_key = \"file:keys/client.asc\"\n\
         columns = { amount = \"decimal(10,2)\", paid_on = \"date\" }\n",
        &["payments"],
    );
    d.assert_rows(
        "SELECT id::text, customer_id::text, paid_on::text, amount::text, memo \
         FROM \"{s}\".payments ORDER BY id",
        &[
            &["1", "1", "2024-04-02", "1234.56", "Facture n° 42"],
            &["2", "3", "2024-04-03", "0.99", "Überweisung"],
        ],
    );

    // 4. the delivery back: the customers as CSV, encrypted to the client, signed by us,
    // uploaded to `incoming/`
    let delivery = format!(
        "client = \"acme\"\n\n[source]\ntype = \"postgres\"\nurl = \"{}\"\nschemas = [\"{}\"]\n\
         tables = [\"customers\"]\n\n[destination]\n{}path = \"incoming\"\nformat = \"csv\"\n\
         encrypt = {{ pgp_recipients = [\"file:keys/client.asc\"], \
         pgp_sign_key = \"${{secret:our_pgp_key}}\", pgp_passphrase = \"${{secret:our_pgp_pass}}\" }}\n\n\
         [[streams]]\nname = \"customers\"\nmode = \"overwrite\"\n",
        db::pg_url(),
        d.schema,
        d.login()
    );
    let o = d.sync("delivery.toml", &delivery);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    assert!(!text.contains(OUR_PASS), "{text}");
    let incoming = d.server.root().join("incoming");
    let names: Vec<String> = std::fs::read_dir(&incoming)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    assert_eq!(names, vec!["customers.csv.gpg"], "no temp file left");
    let plain = pgp::open_delivery(&d.client, &incoming.join("customers.csv.gpg"), b"Besan", US);
    let mut lines: Vec<&str> = plain.lines().collect();
    lines[1..].sort();
    assert_eq!(
        lines,
        vec![
            "id,name,city,balance,since",
            "1,Müller,Besançon,1234.56,2024-03-15",
            "2,Dupont; Zoë,Saint-Étienne,-7.05,2023-12-31",
            "3,Øster € AG,Ærøskøbing,1000000.00,2024-02-29",
        ],
        "{plain}"
    );
}
