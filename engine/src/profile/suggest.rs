//! The ready-to-paste TOML a profile suggests for a stream: protection transforms for the
//! columns that appear to hold personal data, and checks for the rest, each with its
//! evidence as a comment. It parses as a `[[streams]]` entry of `sync.toml`.

use std::fmt::Write;

use super::detect::Kind;
use super::read::StreamProfile;
use super::shape::shape_regex;
use super::stats::ColumnProfile;
use crate::group::group;

/// At most this many distinct values make an `allowed` check.
const MAX_ALLOWED: u64 = 10;

/// How a personal-data column is protected by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Keyed HMAC: joins still work, the value cannot be recovered.
    Hash,
    /// AES-256-GCM: the client can decrypt it with the field key.
    Encrypt,
    /// Only the last 4 characters stay.
    Mask,
    /// Left out of the delivery.
    Drop,
}

impl Kind {
    /// The protection suggested for this kind.
    pub fn protection(self) -> Protection {
        match self {
            Kind::Email | Kind::UsSsn | Kind::UkNino | Kind::NlBsn | Kind::Ipv4 | Kind::Ipv6 => {
                Protection::Hash
            }
            Kind::Iban => Protection::Encrypt,
            Kind::Phone | Kind::PaymentCard => Protection::Mask,
            Kind::DateOfBirth | Kind::PostalCode | Kind::Address => Protection::Drop,
        }
    }
}

/// A TOML string (basic or literal, as the `toml` crate writes it).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `hash` transform for `column`, keyed by the vault's `hash_key`, ready to paste.
pub fn hash_line(column: &str) -> String {
    format!(
        "{{ type = \"hash\", column = {}, key = \"${{secret:hash_key}}\" }}",
        q(column)
    )
}

/// Text safe on one comment line.
fn c(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn number(text: &str) -> Option<String> {
    if text.parse::<i64>().is_ok() {
        return Some(text.to_string());
    }
    let f: f64 = text.parse().ok()?;
    f.is_finite().then(|| toml::Value::Float(f).to_string())
}

/// The suggested `[[streams]]` entry for `p`.
pub fn suggest(p: &StreamProfile) -> String {
    let seen = if p.complete {
        format!("all {} rows", group(p.rows))
    } else {
        format!("the first {} rows (a sample)", group(p.rows))
    };
    let mut transforms = String::new();
    let mut checks = String::new();
    let mut dropped: Vec<&str> = Vec::new();
    let mut drop_why = String::new();
    let mut not_null: Vec<&ColumnProfile> = Vec::new();
    for col in &p.columns {
        let name = q(&col.name);
        if let Some(f) = col.findings.first() {
            let how = f.kind.protection();
            let why = format!("  # {} ({}): {}\n", c(&col.name), f.kind.name(), f.evidence);
            match how {
                Protection::Drop => {
                    dropped.push(&col.name);
                    drop_why.push_str(&why);
                    continue;
                }
                Protection::Hash => {
                    transforms.push_str(&why);
                    let _ = writeln!(transforms, "  {},", hash_line(&col.name));
                }
                Protection::Encrypt => {
                    transforms.push_str(&why);
                    let _ = writeln!(transforms, "  {{ type = \"encrypt\", column = {name}, key = \"${{secret:field_key}}\" }},");
                }
                Protection::Mask => {
                    transforms.push_str(&why);
                    let _ = writeln!(
                        transforms,
                        "  {{ type = \"mask\", column = {name}, keep_last = 4 }},"
                    );
                }
            }
            if col.rows > 0 && col.nulls == 0 {
                not_null.push(col);
            }
            continue;
        }
        if col.rows > 0 && col.nulls == 0 {
            not_null.push(col);
        }
        column_checks(col, &seen, p.complete, &mut checks);
    }
    if !dropped.is_empty() {
        transforms.push_str(&drop_why);
        let list: Vec<String> = dropped.iter().map(|n| q(n)).collect();
        let _ = writeln!(
            transforms,
            "  {{ type = \"drop\", columns = [{}] }},",
            list.join(", ")
        );
    }
    let mut head = String::new();
    if !not_null.is_empty() {
        let list: Vec<String> = not_null.iter().map(|col| q(&col.name)).collect();
        let _ = writeln!(head, "  # no NULL in {seen}");
        let _ = writeln!(
            head,
            "  {{ type = \"not_null\", columns = [{}] }},",
            list.join(", ")
        );
    }
    let checks = head + &checks;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Suggested by `ferry profile` from {seen} of `{}`.",
        c(&p.stream)
    );
    let _ = writeln!(
        out,
        "# Review it, then merge these keys into the stream's [[streams]] entry."
    );
    if transforms.contains("hash_key") {
        let _ = writeln!(
            out,
            "# `hash` needs a key in the vault: ferry keys generate hash"
        );
    }
    if transforms.contains("field_key") {
        let _ = writeln!(
            out,
            "# `encrypt` needs a key in the vault: ferry keys generate field"
        );
    }
    let _ = writeln!(out, "[[streams]]");
    let _ = writeln!(out, "name = {}", q(&p.stream));
    if !transforms.is_empty() {
        let _ = write!(out, "transforms = [\n{transforms}]\n");
    }
    if !checks.is_empty() {
        let _ = write!(out, "checks = [\n{checks}]\n");
    }
    out
}

/// unique, allowed, range and regex checks for a column without personal data.
fn column_checks(col: &ColumnProfile, seen: &str, complete: bool, out: &mut String) {
    let name = q(&col.name);
    let who = c(&col.name);
    let values = col.rows - col.nulls;
    if values == 0 {
        return;
    }
    // a key candidate: every row has a value and no two share one (not numbers with
    // fractions, nor timestamps: distinct by chance, not by design)
    let keyable = col.r#type == "int64" || col.r#type == "string";
    if keyable && col.nulls == 0 && col.distinct_exact && col.distinct == col.rows && col.rows >= 2
    {
        if complete {
            let _ = writeln!(
                out,
                "  # {who}: {} distinct values in {seen}",
                group(col.distinct)
            );
            let _ = writeln!(out, "  {{ type = \"unique\", columns = [{name}] }},");
        } else {
            let _ = writeln!(out, "  # {who}: {} distinct values in {seen}; a key candidate: confirm with `ferry profile --full`, then uncomment", group(col.distinct));
            let _ = writeln!(out, "  # {{ type = \"unique\", columns = [{name}] }},");
        }
    }
    let text = col.r#type == "string";
    if text && col.distinct <= MAX_ALLOWED && values >= 2 * col.distinct && values >= 20 {
        if let Some(all) = &col.all_values {
            let mut all = all.clone();
            all.sort();
            let list: Vec<String> = all.iter().map(|v| q(v)).collect();
            let _ = writeln!(out, "  # {who}: {} distinct values in {seen}", all.len());
            let _ = writeln!(
                out,
                "  {{ type = \"allowed\", column = {name}, values = [{}] }},",
                list.join(", ")
            );
            return;
        }
    }
    if col.numeric {
        if let (Some(lo), Some(hi)) = (
            col.min.as_deref().and_then(number),
            col.max.as_deref().and_then(number),
        ) {
            let _ = writeln!(out, "  # {who}: from {lo} to {hi} in {seen}");
            let _ = writeln!(
                out,
                "  {{ type = \"range\", column = {name}, min = {lo}, max = {hi} }},"
            );
        }
        return;
    }
    if text && col.distinct > MAX_ALLOWED {
        if let Some(re) = col.one_shape.as_deref().and_then(shape_regex) {
            let shape = col.one_shape.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "  # {who}: every value has the shape {} in {seen}",
                c(shape)
            );
            let _ = writeln!(
                out,
                "  {{ type = \"regex\", column = {name}, pattern = {} }},",
                q(&re)
            );
        }
    }
}
