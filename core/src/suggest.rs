//! "Did you mean": the nearest valid word for a likely typo, used by every error that names a
//! key, a stream or a column the user may have misspelt.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(nearest("pasword", ["password", "path"]), Some("password"));
        assert_eq!(nearest("zzz", ["password", "path"]), None);
    }
}
