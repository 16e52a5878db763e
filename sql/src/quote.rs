//! Quoting identifiers, the one way every SQL database does it: the name between quote
//! marks, each mark inside doubled.

/// `name` between `mark`s, each `mark` in it doubled: `"a ""b"""` for `"`, `` `a``b` ``
/// for `` ` ``. Safe for any text (without NUL, which no database takes in a name).
pub fn ident(name: &str, mark: char) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push(mark);
    for c in name.chars() {
        if c == mark {
            s.push(mark);
        }
        s.push(c);
    }
    s.push(mark);
    s
}

#[cfg(test)]
mod tests {
    use super::ident;

    #[test]
    fn marks_inside_are_doubled() {
        assert_eq!(ident("plain", '"'), "\"plain\"");
        assert_eq!(ident("a \"b\"; DROP", '"'), "\"a \"\"b\"\"; DROP\"");
        assert_eq!(ident("a`b", '`'), "`a``b`");
        assert_eq!(ident("", '"'), "\"\"");
    }
}
