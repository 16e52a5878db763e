//! The client's HTML delivery report: written beside each receipt with `[run] html_report`,
//! or by `ferry report RUN_ID --html FILE`; its figures are the receipt's, and the page
//! renders in a real browser (Debian's chromium) with no console message.

mod support;

#[path = "support/browser.rs"]
mod browser;
#[path = "support/png.rs"]
mod png;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::cli::{assert_says, exits_saying_all, ferry_in, out, Setup, MASTER_KEY};
use support::{folder, read};

fn ferry(dir: &Path, args: &[&str]) -> std::process::Output {
    ferry_in(dir).master_key(MASTER_KEY).run(args, None)
}

/// Orders checked against users (those of a missing user are quarantined), the users,
/// and a stream named `<script>`, generated and delivered as CSV files.
fn config(users: u64, orders_extra: &str, html_report: bool) -> String {
    format!(
        "client = \"acme\"\n\
         [source]\ntype = \"generate\"\nstreams = [{{ name = \"orders\", preset = \"orders\", rows = 300 }}, \
         {{ name = \"users\", preset = \"users\", rows = {users} }}, {{ name = \"<script>\", preset = \"users\", rows = 7 }}]\n\
         [destination]\ntype = \"file\"\npath = \"out\"\nformat = \"csv\"\n\
         [[streams]]\nname = \"orders\"\nmode = \"overwrite\"\n{orders_extra}\
         checks = [{{ type = \"referential\", column = \"user_id\", stream = \"users\", stream_column = \"id\" }}]\n\
         [[streams]]\nname = \"users\"\nmode = \"overwrite\"\n\
         [[streams]]\nname = \"<script>\"\nmode = \"overwrite\"\n\
         [run]\nhtml_report = {html_report}\n"
    )
}

/// A folder of [`config`] (10 users, any share of orders may be rejected) with a signing key.
fn signing_folder(html_report: bool) -> tempfile::TempDir {
    let tmp = folder::with_config(&config(10, "max_bad_ratio = 1\n", html_report));
    let o = ferry(tmp.path(), &["keys", "generate", "signing"]);
    assert!(o.status.success(), "{}", out(&o));
    tmp
}

/// The receipt `ferry sync` said it wrote.
fn receipt_printed(dir: &Path, o: &std::process::Output) -> PathBuf {
    let printed = out(o);
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("receipt: "))
        .unwrap_or_else(|| panic!("no receipt line in:\n{printed}"));
    dir.join(line.split(" (").next().unwrap())
}

/// The attributes of every `<TAG class="CLASS" …>` of `html`, values unescaped.
fn tags(html: &str, tag: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{tag} class=\"{class}\"");
    let mut found = Vec::new();
    for start in html.match_indices(&open).map(|(i, _)| i + open.len()) {
        let end = start + html[start..].find('>').unwrap();
        let mut attrs = BTreeMap::new();
        let mut rest = html[start..end].trim();
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].trim().to_string();
            let close = eq + 2 + rest[eq + 2..].find('"').unwrap();
            attrs.insert(name, unescape(&rest[eq + 2..close]));
            rest = &rest[close + 1..];
        }
        found.push(attrs);
    }
    found
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Fails unless every count of `receipt` (a receipt file's JSON) is on `html` as it is in
/// the receipt: per stream, in total, and per output.
fn figures_equal_the_receipt(html: &str, receipt: &Value) {
    let streams = receipt["receipt"]["streams"].as_array().unwrap();
    let rows = tags(html, "tr", "stream");
    assert_eq!(rows.len(), streams.len(), "one row per stream");
    for s in streams {
        let name = s["stream"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r["data-stream"] == name)
            .unwrap_or_else(|| panic!("no row of stream {name}"));
        let mut compared = 0;
        for (field, value) in s.as_object().unwrap() {
            if let Some(n) = value.as_u64() {
                let attr = format!("data-{}", field.replace('_', "-"));
                assert_eq!(row.get(&attr), Some(&n.to_string()), "{name} {field}");
                compared += 1;
            }
        }
        assert!(compared >= 5, "{name}: only {compared} counts");
        assert_eq!(row["data-status"], s["status"].as_str().unwrap());
        let numbers = row.keys().filter(|k| k.starts_with("data-rows-")).count();
        let in_receipt = s
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| k.starts_with("rows_") && v.is_u64())
            .count();
        assert_eq!(
            numbers, in_receipt,
            "{name}: a count the receipt does not hold"
        );
        for o in s["outputs"].as_array().unwrap() {
            let shown = tags(html, "tr", "output")
                .into_iter()
                .find(|t| t["data-output-of"] == name && t["data-location"] == o["location"])
                .unwrap_or_else(|| panic!("no output {} of {name}", o["location"]));
            assert_eq!(shown["data-rows"], o["rows"].to_string());
            assert_eq!(shown["data-bytes"], o["bytes"].to_string());
            assert_eq!(shown["data-digest"], o["digest"].as_str().unwrap());
        }
    }
    let mut totals = 0;
    for total in tags(html, "div", "figure ok")
        .into_iter()
        .chain(tags(html, "div", "figure bad"))
        .chain(tags(html, "div", "figure"))
    {
        let field = &total["data-total"];
        let sum: u64 = streams.iter().map(|s| s[field].as_u64().unwrap()).sum();
        assert_eq!(total["data-value"], sum.to_string(), "total {field}");
        totals += 1;
    }
    assert_eq!(totals, 3, "rows read, delivered and rejected in total");
}

#[test]
fn every_run_writes_a_page_whose_figures_are_the_receipts_and_a_browser_shows_it() {
    let tmp = signing_folder(true);
    let dir = tmp.path();
    // orders of users 11 and up are quarantined: the run succeeds with rejected rows
    let o = ferry(dir, &["sync"]);
    exits_saying_all(&o, 0, &["report: ", ".html (for the client)"]);
    let first = receipt_printed(dir, &o);
    // one user left: most orders fail the check, more than max_bad_ratio allows
    folder::write(dir, "sync.toml", config(1, "", true));
    let o = ferry(dir, &["sync"]);
    exits_saying_all(&o, 1, &["report: ", ".html (for the client)"]);
    let second = receipt_printed(dir, &o);

    for receipt in [&first, &second] {
        let json = read::json(receipt);
        let html = std::fs::read_to_string(receipt.with_extension("html")).unwrap();
        figures_equal_the_receipt(&html, &json);
        let orders = read::stream(&json["receipt"], "orders");
        assert!(orders["rows_rejected"].as_u64().unwrap() > 0, "{orders}");
        assert!(
            !html.contains("<script"),
            "no script, and `<script>` is escaped"
        );
        assert!(html.contains("&lt;script&gt;"));
    }
    let failed = read::json(&second);
    assert_eq!(failed["receipt"]["status"], "failed");

    // the second page charts both runs, oldest first, with their receipts' totals
    let html = std::fs::read_to_string(second.with_extension("html")).unwrap();
    let bars = tags(&html, "g", "bar")
        .into_iter()
        .chain(tags(&html, "g", "bar current"))
        .filter(|b| b.contains_key("data-run"))
        .collect::<Vec<_>>();
    let runs: Vec<&str> = bars.iter().map(|b| b["data-run"].as_str()).collect();
    let ids: Vec<Value> = [&first, &second]
        .iter()
        .map(|r| read::json(r)["receipt"]["run_id"].clone())
        .collect();
    assert_eq!(
        runs,
        ids.iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>()
    );
    for (bar, receipt) in bars.iter().zip([&first, &second]) {
        let json = read::json(receipt);
        let sum = |f: &str| -> u64 {
            json["receipt"]["streams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s[f].as_u64().unwrap())
                .sum()
        };
        assert_eq!(
            bar["data-rows-committed"],
            sum("rows_committed").to_string()
        );
        assert_eq!(bar["data-rows-rejected"], sum("rows_rejected").to_string());
    }

    // a real browser: no console message, a picture that is not blank, the streams shown
    let page = second.with_extension("html");
    let shot = dir.join("shot.png");
    let console = browser::screenshot(&page, &shot);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let colours = png::distinct_colours(&std::fs::read(&shot).unwrap());
    assert!(colours > 8, "a blank page: {colours} colours");
    let dom = browser::dump_dom(&page);
    assert_says(
        &dom,
        &[
            "orders",
            "users",
            "&lt;script&gt;",
            "Check this delivery yourself",
        ],
        &["<script"],
    );
}

#[test]
fn report_makes_the_page_of_a_run_and_names_the_folder_for_an_unknown_run() {
    let tmp = signing_folder(false);
    let dir = tmp.path();
    let o = ferry(dir, &["sync"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        !out(&o).contains("report: "),
        "html_report is off: {}",
        out(&o)
    );
    let receipt = receipt_printed(dir, &o);
    assert!(!receipt.with_extension("html").exists());
    let json = read::json(&receipt);
    let run = json["receipt"]["run_id"].as_str().unwrap();

    let o = ferry(dir, &["report", run, "--html", "by-id.html"]);
    exits_saying_all(&o, 0, &["report: by-id.html", run]);
    let html = std::fs::read_to_string(dir.join("by-id.html")).unwrap();
    figures_equal_the_receipt(&html, &json);
    let path = receipt.to_str().unwrap();
    let o = ferry(dir, &["report", path, "--html", "by-path.html"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("by-path.html")).unwrap(),
        html
    );

    // the verify section: the client's commands, and the SHA256SUMS the run wrote
    let text = unescape(&html);
    let public = json["signature"]["public_key"].as_str().unwrap();
    for command in [
        format!("ferry verify {run}.json --pubkey {public} --dir DELIVERY"),
        "ssh-keygen -Y verify -f allowed_signers -I ferry -n ferry-delivery -s SHA256SUMS.sig < SHA256SUMS".into(),
        "sha256sum -c SHA256SUMS".into(),
    ] {
        assert!(text.contains(&command), "{command} not in:\n{text}");
    }
    let sums = std::fs::read_to_string(dir.join("out/SHA256SUMS")).unwrap();
    assert!(sums.lines().count() == 3 && text.contains(&sums), "{sums}");

    let o = ferry(
        dir,
        &["report", "20990101T000000Z-abcdef", "--html", "x.html"],
    );
    exits_saying_all(
        &o,
        2,
        &[
            "no receipt of run `20990101T000000Z-abcdef`: the receipts folder holds 1 receipt(s)",
            &format!("the newest `{run}`"),
            "(receipts .ferry/receipts)",
            "hint: give the run id a sync printed",
        ],
    );
    assert!(!dir.join("x.html").exists());
}
