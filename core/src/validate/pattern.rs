//! The `regex` check's matcher: the `regex` crate's answer, found faster.
//!
//! `regex::Regex::is_match` pays a fixed cost per call (choosing a strategy, borrowing a
//! cache from a pool, setting up the search) that dominates on short values such as e-mail
//! addresses. The check asks one question per value, "is there a match anywhere?", so it
//! runs a lazy DFA of the same pattern (regex-automata, the engine inside the `regex`
//! crate, with the same syntax and the same compiled NFA) over the value with a cache of its
//! own. Where that DFA could differ or cannot decide, the `regex` crate answers:
//! - patterns that can match the empty string never use the DFA (an empty match splitting a
//!   multi-byte character is reported by a DFA but not by `regex`);
//! - a pattern the DFA cannot be built for (a Unicode word boundary, size limits) always
//!   goes to `regex`;
//! - a value the DFA gives up on (it quits on a byte it cannot handle, or its cache thrashes)
//!   goes to `regex`.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::NFA;
use regex_automata::Input;

/// A compiled `regex` check pattern.
pub(super) struct Pattern {
    re: regex::Regex,
    fast: Option<(DFA, Cache)>,
}

impl Pattern {
    /// Compiles `pattern` (Rust regex syntax); the error is the `regex` crate's.
    pub(super) fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        let re = regex::Regex::new(pattern)?;
        let fast = NFA::new(pattern)
            .ok()
            .filter(|nfa| !nfa.has_empty())
            .and_then(|nfa| DFA::builder().build_from_nfa(nfa).ok())
            .map(|dfa| {
                let cache = dfa.create_cache();
                (dfa, cache)
            });
        Ok(Pattern { re, fast })
    }

    /// The pattern as written.
    pub(super) fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// Whether `text` holds a match: `regex::Regex::is_match`.
    #[inline]
    pub(super) fn is_match(&mut self, text: &str) -> bool {
        if let Some((dfa, cache)) = &mut self.fast {
            if let Ok(found) = dfa.try_search_fwd(cache, &Input::new(text).earliest(true)) {
                return found.is_some();
            }
        }
        self.re.is_match(text)
    }

    /// Whether the DFA answers for this pattern (for tests).
    #[cfg(test)]
    fn is_fast(&self) -> bool {
        self.fast.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_exactly_like_the_regex_crate() {
        let patterns = [
            r"^[^@]+@[^@]+$",
            r"\d{3}",
            r"^\w+$",
            r"(?i)straße",
            r"é+",
            r"[[:alpha:]]+",
            r"(?m)^x$",
            r"\bfoo\b",
            r"^(a|bc)+$",
            r"[a&&b]+",
            r".",
            r"(?s).x",
            r"a*",
            r"^$",
            r"x?",
            r"(?-u:\b)",
            r"\B",
        ];
        let texts = [
            "",
            "a@b",
            "@",
            "a@@b",
            "é@ü",
            "foo bar",
            "föö",
            "xx\nx",
            "\nx",
            "STRASSE",
            "STRAẞE",
            "straße",
            "123",
            "١٢٣",
            "ééé",
            "abcbca",
            "abcb",
            "Ünïcödé wörds",
            "x",
            " foo",
            "fooé",
            "éfoo",
        ];
        let mut fast = 0;
        for p in patterns {
            let mut pattern = Pattern::new(p).unwrap();
            let re = regex::Regex::new(p).unwrap();
            fast += pattern.is_fast() as usize;
            for t in texts {
                assert_eq!(pattern.is_match(t), re.is_match(t), "{p} on {t:?}");
            }
        }
        // the common validation patterns take the DFA; empty-matching ones never do
        assert!(Pattern::new(r"^[^@]+@[^@]+$").unwrap().is_fast());
        assert!(!Pattern::new(r"a*").unwrap().is_fast());
        assert!(!Pattern::new(r"\bfoo\b").unwrap().is_fast());
        assert!(fast >= 8, "{fast} patterns took the DFA");
        assert!(Pattern::new(r"(").is_err());
    }
}
