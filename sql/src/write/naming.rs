//! Names of the tables Ferry makes for itself: an overwrite's staging table, and how to
//! recognise the staging tables that crashed runs left behind.

/// Prefix of every table Ferry makes for itself in a destination.
pub const FERRY_PREFIX: &str = "_ferry_";
/// Prefix of the staging tables an overwrite writes into before the swap.
pub const STAGING_PREFIX: &str = "_ferry_stage_";
/// Prefix of the old table an overwrite swaps out (MySQL), dropped right after the swap.
pub const OLD_PREFIX: &str = "_ferry_old_";
/// The one-row table naming the client a destination is bound to (tenant binding).
pub const OWNER_TABLE: &str = "_ferry_owner";

/// An overwrite's staging table, and which tables are leftovers of crashed overwrites
/// of the same table (dropped before the new staging table is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    /// The staging table's name.
    pub name: String,
    /// Prefixes of the leftovers' names.
    pub leftovers: Vec<String>,
    /// Only a name whose rest after the prefix is a run id is a leftover: the prefix
    /// alone may also begin the helper tables of another table (`orders_` of `orders_x`).
    pub run_id_rest: bool,
    /// A staging table of this very name is a leftover too (an open repeated after a
    /// lost connection finds its own); otherwise it means another stream of this run is
    /// overwriting the same table, which is refused.
    pub own_is_leftover: bool,
}

impl Staging {
    /// `_ferry_stage_<table>_<run id>`; when that is longer than `max_len` bytes,
    /// `_ferry_stage_<hash of table>_<run id>`. A leftover is a prefix and a run id.
    pub fn by_run_id(table: &str, run_id: &str, max_len: Option<usize>) -> Staging {
        let plain = format!("{STAGING_PREFIX}{table}_");
        let prefix = match max_len {
            Some(max) if plain.len() + RUN_ID_LEN > max => {
                format!("{STAGING_PREFIX}{:016x}_", fnv1a(table))
            }
            _ => plain,
        };
        Staging {
            name: format!("{prefix}{run_id}"),
            leftovers: vec![prefix],
            run_id_rest: true,
            own_is_leftover: false,
        }
    }

    /// `<prefix><tag of table>_<run suffix>_<start of table>` in at most `max_chars`
    /// characters, for databases with short names: the tag (a hash) tells whose helper
    /// a table is, so every table under [`STAGING_PREFIX`] or [`OLD_PREFIX`] and the
    /// tag is a leftover.
    pub fn tagged(table: &str, run_id: &str, max_chars: usize) -> Staging {
        Staging {
            name: tagged_name(STAGING_PREFIX, table, run_id, max_chars),
            leftovers: vec![
                tagged_prefix(STAGING_PREFIX, table),
                tagged_prefix(OLD_PREFIX, table),
            ],
            run_id_rest: false,
            own_is_leftover: false,
        }
    }

    /// Whether `name`, a table starting with `prefix` (one of [`Staging::leftovers`]),
    /// is to be dropped before the overwrite; an error if it is this staging table and
    /// that means another stream of the run overwrites the same table.
    pub fn is_leftover(&self, prefix: &str, name: &str, table: &str) -> ferry_core::Result<bool> {
        if name == self.name && !self.own_is_leftover {
            return Err(ferry_core::Error::config(format!(
                "table `{table}` is already being overwritten by another stream of this run"
            )));
        }
        Ok(!self.run_id_rest || looks_like_run_id(&name[prefix.len()..]))
    }
}

/// The prefix of every helper table of `table` under `prefix`: `<prefix><tag>_`.
pub fn tagged_prefix(prefix: &str, table: &str) -> String {
    format!("{prefix}{:012x}_", fnv1a(table) & 0xffff_ffff_ffff)
}

/// The helper table of `table` under `prefix` for run `run_id`:
/// `<prefix><tag of table>_<run suffix>_<start of table>`, at most `max_chars` characters.
pub fn tagged_name(prefix: &str, table: &str, run_id: &str, max_chars: usize) -> String {
    let run: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut name = format!("{}{run}_", tagged_prefix(prefix, table));
    let room = max_chars.saturating_sub(name.chars().count());
    name.extend(table.chars().take(room));
    name
}

/// Length of the run ids Ferry generates.
const RUN_ID_LEN: usize = 23;

/// Whether `s` has the shape of a run id Ferry generates (`20240501T120000Z-1a2b3c`).
pub fn looks_like_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == RUN_ID_LEN
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(|c| c.is_ascii_hexdigit())
}

/// FNV-1a 64 of `s`: short, stable names for long table names.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        assert!(looks_like_run_id("20240501T120000Z-1a2b3c"));
        assert!(!looks_like_run_id("20240501T120000Z-1a2b3c_x"));
        assert!(!looks_like_run_id("orders"));
    }

    #[test]
    fn staging_names_fit_and_know_their_leftovers() {
        let run = "20240501T120000Z-1a2b3c";
        let s = Staging::by_run_id("t", run, Some(63));
        assert_eq!(s.leftovers, ["_ferry_stage_t_"]);
        assert_eq!(s.name, format!("_ferry_stage_t_{run}"));
        let long = "x".repeat(40);
        let s = Staging::by_run_id(&long, run, Some(63));
        assert!(s.name.len() <= 63, "{}", s.name);
        assert_eq!(s, Staging::by_run_id(&long, run, Some(63)));
        assert_eq!(
            Staging::by_run_id(&long, run, None).name,
            format!("_ferry_stage_{long}_{run}")
        );
        // a table whose name continues this one's is not a leftover of it
        let s = Staging::by_run_id("orders", run, None);
        let p = &s.leftovers[0];
        let other = format!("_ferry_stage_orders_x_{run}");
        assert!(!s.is_leftover(p, &other, "orders").unwrap());
        let crashed = "_ferry_stage_orders_20240101T000000Z-abcdef";
        assert!(s.is_leftover(p, crashed, "orders").unwrap());
        assert!(s.is_leftover(p, &s.name, "orders").is_err());
    }

    #[test]
    fn tagged_names_fit_and_are_stable() {
        let long = "t".repeat(80);
        let n = tagged_name(STAGING_PREFIX, &long, "20240501T120000Z-1a2b3c", 64);
        assert_eq!(n.chars().count(), 64);
        assert!(n.starts_with(&tagged_prefix(STAGING_PREFIX, &long)));
        assert!(n.contains("_1a2b3c_"));
        assert_ne!(
            tagged_prefix(STAGING_PREFIX, "orders"),
            tagged_prefix(STAGING_PREFIX, "Orders")
        );
        let short = tagged_name(OLD_PREFIX, "orders", "20240501T120000Z-1a2b3c", 64);
        assert!(short.ends_with("_1a2b3c_orders"), "{short}");
        assert!(short.starts_with(FERRY_PREFIX));
        let s = Staging::tagged("orders", "20240501T120000Z-1a2b3c", 64);
        assert!(s.is_leftover(&s.leftovers[1], &short, "orders").unwrap());
    }
}
