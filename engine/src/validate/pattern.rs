//! The `regex` check: its matcher (the `regex` crate's answer, found faster) and its scan.
//!
//! `regex::Regex::is_match` pays a fixed cost per call (choosing a strategy, borrowing a
//! cache from a pool, setting up the search) that dominates on short values such as e-mail
//! addresses. The check asks one question per value, "is there a match anywhere?", so it
//! runs a DFA of the same pattern (regex-automata, the engine inside the `regex` crate, with
//! the same syntax and the same compiled NFA) over the value. A small pattern (a DFA of at
//! most 256 KiB, as validation patterns are) is determinized once, up front, and walked
//! over four values at a time: each step of a DFA waits for the step before it, so four
//! independent walks keep the processor busy where one leaves it waiting. Other patterns
//! run a lazy DFA with a cache of its own. Where a DFA could differ or cannot decide, the
//! `regex` crate answers:
//! - patterns that can match the empty string never use the DFA (an empty match splitting a
//!   multi-byte character is reported by a DFA but not by `regex`);
//! - a pattern the DFA cannot be built for (a Unicode word boundary, size limits) always
//!   goes to `regex`;
//! - a value the DFA gives up on (it quits on a byte it cannot handle, or its cache thrashes)
//!   goes to `regex`.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, StringArray};
use regex_automata::dfa::{dense, Automaton};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::NFA;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, Input};

use super::columns::{each_text, is_text};
use super::Fails;
use ferry_core::values::preview;

/// A compiled `regex` check pattern.
pub(super) struct Pattern {
    re: regex::Regex,
    dense: Option<Dense>,
    fast: Option<(DFA, Cache)>,
}

/// A DFA built in full, and its state at the start of a text.
struct Dense {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
}

/// What a walk of the DFA found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    Match,
    NoMatch,
    /// The DFA stopped on a byte it cannot handle: ask the `regex` crate.
    Unsure,
}

impl Dense {
    fn build(nfa: &NFA) -> Option<Dense> {
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(regex_automata::dfa::StartKind::Unanchored)
                    .dfa_size_limit(Some(256 << 10))
                    .determinize_size_limit(Some(1 << 20)),
            )
            .build_from_nfa(nfa)
            .ok()?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::No))
            .ok()?;
        // a start state that is already dead or quits: leave it to the other engines
        (!dfa.is_special_state(start)).then_some(Dense { dfa, start })
    }

    /// Goes on from state `sid` over `rest`, to the end of the text.
    #[inline]
    fn finish(&self, mut sid: StateID, rest: &[u8]) -> Walk {
        let dfa = &self.dfa;
        let mut rest = rest.iter();
        loop {
            if dfa.is_special_state(sid) {
                // a match is reported as soon as it is known ("anywhere" is all we ask)
                return if dfa.is_match_state(sid) {
                    Walk::Match
                } else if dfa.is_dead_state(sid) {
                    Walk::NoMatch
                } else {
                    Walk::Unsure
                };
            }
            match rest.next() {
                Some(b) => sid = dfa.next_state(sid, *b),
                None => break,
            }
        }
        let sid = dfa.next_eoi_state(sid);
        if dfa.is_match_state(sid) {
            Walk::Match
        } else if dfa.is_quit_state(sid) {
            Walk::Unsure
        } else {
            Walk::NoMatch
        }
    }

    /// Walks four texts in step while none of them meets a special state, then each alone.
    #[inline]
    fn walk4(&self, t: [&[u8]; 4]) -> [Walk; 4] {
        let dfa = &self.dfa;
        let n = t.iter().map(|x| x.len()).min().unwrap_or(0);
        let mut sid = [self.start; 4];
        let mut i = 0;
        while i < n {
            let s = [
                dfa.next_state(sid[0], t[0][i]),
                dfa.next_state(sid[1], t[1][i]),
                dfa.next_state(sid[2], t[2][i]),
                dfa.next_state(sid[3], t[3][i]),
            ];
            sid = s;
            i += 1;
            if s.iter().any(|x| dfa.is_special_state(*x)) {
                break;
            }
        }
        [0, 1, 2, 3].map(|k| self.finish(sid[k], &t[k][i..]))
    }
}

impl Pattern {
    /// Compiles `pattern` (Rust regex syntax); the error is the `regex` crate's.
    pub(super) fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        let re = regex::Regex::new(pattern)?;
        let nfa = NFA::new(pattern).ok().filter(|nfa| !nfa.has_empty());
        let dense = nfa.as_ref().and_then(Dense::build);
        let fast = nfa
            .filter(|_| dense.is_none())
            .and_then(|nfa| DFA::builder().build_from_nfa(nfa).ok())
            .map(|dfa| {
                let cache = dfa.create_cache();
                (dfa, cache)
            });
        Ok(Pattern { re, dense, fast })
    }

    /// The pattern as written.
    pub(super) fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// Whether `text` holds a match: `regex::Regex::is_match`.
    #[inline]
    pub(super) fn is_match(&mut self, text: &str) -> bool {
        if let Some(d) = &self.dense {
            match d.finish(d.start, text.as_bytes()) {
                Walk::Match => return true,
                Walk::NoMatch => return false,
                Walk::Unsure => return self.re.is_match(text),
            }
        }
        if let Some((dfa, cache)) = &mut self.fast {
            if let Ok(found) = dfa.try_search_fwd(cache, &Input::new(text).earliest(true)) {
                return found.is_some();
            }
        }
        self.re.is_match(text)
    }

    /// Calls `bad(row, text)` for each non-NULL value of `a` that holds no match, in row
    /// order.
    pub(super) fn scan(&mut self, a: &StringArray, mut bad: impl FnMut(usize, &str)) {
        let Some(d) = &self.dense else {
            for r in 0..a.len() {
                if a.is_valid(r) && !self.is_match(a.value(r)) {
                    bad(r, a.value(r));
                }
            }
            return;
        };
        let (data, offsets) = (a.value_data(), a.value_offsets());
        let text = |r: usize| &data[offsets[r] as usize..offsets[r + 1] as usize];
        let mut verdict = |r: usize, w: Walk| {
            let ok = match w {
                Walk::Match => true,
                Walk::NoMatch => false,
                Walk::Unsure => self.re.is_match(a.value(r)),
            };
            if !ok && a.is_valid(r) {
                bad(r, a.value(r));
            }
        };
        let n = a.len();
        let mut r = 0;
        while r + 4 <= n {
            let w = d.walk4([text(r), text(r + 1), text(r + 2), text(r + 3)]);
            for (k, w) in w.into_iter().enumerate() {
                verdict(r + k, w);
            }
            r += 4;
        }
        for r in r..n {
            verdict(r, d.finish(d.start, text(r)));
        }
    }

    /// Whether a DFA answers for this pattern (for tests).
    #[cfg(test)]
    fn is_fast(&self) -> bool {
        self.dense.is_some() || self.fast.is_some()
    }
}

impl Pattern {
    /// Pushes `(row, message)` for each non-NULL value of column `c` (in its text form)
    /// the pattern does not match: the `regex` check.
    pub(super) fn scan_column(
        &mut self,
        batch: &RecordBatch,
        c: usize,
        buf: &mut String,
        out: &mut Fails,
    ) {
        if is_text(batch, c) {
            let pattern = self.as_str().to_string();
            self.scan(batch.column(c).as_string::<i32>(), |r, t| {
                out.push((r, format!("`{}` does not match {pattern}", preview(t))));
            });
            return;
        }
        each_text(batch, c, buf, |r, t| {
            if !self.is_match(t) {
                out.push((
                    r,
                    format!("`{}` does not match {}", preview(t), self.as_str()),
                ));
            }
        })
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
        // a whole column, four values at a time, with NULLs and a tail of fewer than four
        for p in patterns {
            let mut pattern = Pattern::new(p).unwrap();
            let re = regex::Regex::new(p).unwrap();
            for take in [texts.len(), texts.len() - 1, texts.len() - 2, 3] {
                let values: Vec<Option<&str>> = texts[..take]
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i % 7 != 3).then_some(*t))
                    .collect();
                let array = StringArray::from(values.clone());
                let mut bad = Vec::new();
                pattern.scan(&array, |r, t| bad.push((r, t.to_string())));
                let want: Vec<(usize, String)> = values
                    .iter()
                    .enumerate()
                    .filter_map(|(r, v)| v.filter(|t| !re.is_match(t)).map(|t| (r, t.into())))
                    .collect();
                assert_eq!(bad, want, "{p}");
            }
        }
        assert!(Pattern::new(r"(").is_err());
        // small patterns are built in full; a large one takes the lazy DFA
        assert!(Pattern::new(r"^[^@]+@[^@]+$").unwrap().dense.is_some());
        let large = Pattern::new(r"^\w{40}[[:^alpha:]]\w{40}$").unwrap();
        assert!(large.dense.is_none() && large.fast.is_some());
    }
}
