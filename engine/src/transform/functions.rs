//! The functions `filter` and `derive` expressions may call: Ferry's own (NULL handling and
//! the text functions people reach for when cleaning client files) on top of evalexpr's
//! built-ins. Every name is checked when the transform is built, so a typo is a config
//! error before a row is read; `docs/transforms.md` documents each one.
//!
//! Ferry's text functions return NULL when an argument is NULL (as SQL's do), count
//! characters, not bytes, and never panic on any input.

use std::collections::HashMap;

use evalexpr::{EvalexprError, EvalexprResult, Node, Operator, Value};
use regex::Regex;

use ferry_core::{Error, Result};

/// Ferry's functions, resolved before evalexpr's built-ins (so `str::substring` and
/// `math::abs` are the ones that cannot panic).
const OWN: &[&str] = &[
    "is_null",
    "coalesce",
    "replace",
    "regex_replace",
    "regex_matches",
    "split",
    "pad_left",
    "pad_right",
    "substring",
    "str::substring",
    "math::abs",
];

/// evalexpr 11's built-ins as compiled here (without its `regex_support` and `rand`
/// features: Ferry's `regex_replace` bounds and precompiles patterns instead).
const BUILTIN: &[&str] = &[
    "if",
    "min",
    "max",
    "floor",
    "round",
    "ceil",
    "len",
    "typeof",
    "contains",
    "contains_any",
    "str::to_lowercase",
    "str::to_uppercase",
    "str::trim",
    "str::from",
    "math::sqrt",
    "math::cbrt",
    "math::pow",
    "math::hypot",
    "math::exp",
    "math::exp2",
    "math::ln",
    "math::log",
    "math::log2",
    "math::log10",
    "math::sin",
    "math::cos",
    "math::tan",
    "math::asin",
    "math::acos",
    "math::atan",
    "math::atan2",
    "math::sinh",
    "math::cosh",
    "math::tanh",
    "math::asinh",
    "math::acosh",
    "math::atanh",
    "math::is_nan",
    "math::is_finite",
    "math::is_infinite",
    "math::is_normal",
    "bitand",
    "bitor",
    "bitxor",
    "bitnot",
    "shl",
    "shr",
];

/// The longest regular expression accepted, in bytes: patterns come from the config, but
/// a bound keeps a pasted monster from costing memory at build time.
pub const MAX_PATTERN: usize = 1000;
/// The compiled size limit of one pattern (the `regex` crate matches in linear time; this
/// bounds its automaton).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The widest `pad_left`/`pad_right` result, in characters.
pub const MAX_PAD: i64 = 10_000;

/// Every function name an expression may call, Ferry's first.
pub fn names() -> impl Iterator<Item = &'static str> {
    OWN.iter().chain(BUILTIN).copied()
}

/// A config error for each function `node` calls that does not exist, naming the nearest
/// ones.
pub fn check_names(node: &Node, what: &str) -> Result<()> {
    for f in node.iter_function_identifiers() {
        if names().any(|n| n == f) {
            continue;
        }
        // a close best guess (as `config::nearest` judges it), then the next closest
        let mut near: Vec<(f64, &str)> = names()
            .map(|n| (strsim::jaro_winkler(f, n), n))
            .filter(|(s, _)| *s > 0.7)
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut msg = format!("{what}: unknown function `{f}`");
        if let Some(((best_score, best), rest)) = near.split_first() {
            if *best_score > 0.8 {
                msg.push_str(&format!("; did you mean `{best}`?"));
                let others: Vec<String> =
                    rest.iter().take(3).map(|(_, n)| format!("`{n}`")).collect();
                if !others.is_empty() {
                    msg.push_str(&format!(" (also near: {})", others.join(", ")));
                }
            }
        }
        msg.push_str(" (every function is listed in docs/transforms.md)");
        return Err(Error::config(msg).with("function", f));
    }
    Ok(())
}

/// The regular expressions an expression uses, compiled once when it is built.
#[derive(Default)]
pub struct Regexes(HashMap<String, Regex>);

impl Regexes {
    /// Compiles the pattern of every `regex_replace`/`regex_matches` call in `node`; a
    /// pattern must be a string literal, so that it is checked (and bounded) before the run.
    pub fn compile(node: &Node, what: &str) -> Result<Regexes> {
        let mut out = HashMap::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            stack.extend(n.children());
            let Operator::FunctionIdentifier { identifier } = n.operator() else {
                continue;
            };
            if identifier != "regex_replace" && identifier != "regex_matches" {
                continue;
            }
            let args = arguments(n);
            let pattern = args
                .get(1)
                .filter(|p| p.iter_variable_identifiers().next().is_none())
                .and_then(|p| p.eval().ok());
            let Some(Value::String(pattern)) = pattern else {
                return Err(Error::config(format!(
                    "{what}: the pattern of `{identifier}` (its second argument) must be a string literal, such as \"[0-9]+\""
                )));
            };
            if pattern.len() > MAX_PATTERN {
                return Err(Error::config(format!(
                    "{what}: the pattern of `{identifier}` is {} bytes long; at most {MAX_PATTERN} are accepted",
                    pattern.len()
                )));
            }
            let re = regex::RegexBuilder::new(&pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    Error::config(format!(
                        "{what}: invalid pattern {pattern:?} in `{identifier}`: {e}"
                    ))
                })?;
            out.insert(pattern, re);
        }
        Ok(Regexes(out))
    }
}

/// The argument nodes of a function call node (`f(a, b)` → `[a, b]`).
fn arguments(call: &Node) -> Vec<&Node> {
    let mut n = match call.children() {
        [only] => only,
        _ => return Vec::new(),
    };
    while matches!(n.operator(), Operator::RootNode) && n.children().len() == 1 {
        n = &n.children()[0];
    }
    match n.operator() {
        Operator::Tuple => n.children().iter().collect(),
        _ => vec![n],
    }
}

/// Calls Ferry's function `name` (`None`: not one of Ferry's, evalexpr's built-ins next).
pub fn call(name: &str, argument: &Value, regexes: &Regexes) -> Option<EvalexprResult<Value>> {
    let args: &[Value] = match argument {
        Value::Tuple(t) => t,
        one => std::slice::from_ref(one),
    };
    Some(match name {
        "is_null" => Ok(Value::Boolean(matches!(argument, Value::Empty))),
        "coalesce" => Ok(args
            .iter()
            .find(|v| !matches!(v, Value::Empty))
            .cloned()
            .unwrap_or(Value::Empty)),
        "replace" => text_fn(args, 3, 3, |a| {
            let (s, from, to) = (text(&a[0])?, text(&a[1])?, text(&a[2])?);
            Ok(if from.is_empty() {
                s.into_owned()
            } else {
                s.replace(from.as_ref(), &to)
            }
            .into())
        }),
        "regex_replace" => text_fn(args, 3, 3, |a| {
            let (s, to) = (text(&a[0])?, text(&a[2])?);
            Ok(regex(regexes, &a[1])?
                .replace_all(&s, to.as_ref())
                .into_owned()
                .into())
        }),
        "regex_matches" => text_fn(args, 2, 2, |a| {
            Ok(Value::Boolean(
                regex(regexes, &a[1])?.is_match(&text(&a[0])?),
            ))
        }),
        "split" => text_fn(args, 3, 3, |a| {
            let (s, sep, n) = (text(&a[0])?, text(&a[1])?, a[2].as_int()?);
            let parts: Vec<&str> = if sep.is_empty() {
                vec![&s]
            } else {
                s.split(sep.as_ref()).collect()
            };
            let i = match n {
                0 => {
                    return Err(custom(
                        "split: parts count from 1 (or from -1 at the end), not 0",
                    ))
                }
                n if n > 0 => usize::try_from(n - 1).ok(),
                n => usize::try_from(n.unsigned_abs())
                    .ok()
                    .and_then(|back| parts.len().checked_sub(back)),
            };
            Ok(i.and_then(|i| parts.get(i)).copied().unwrap_or("").into())
        }),
        "pad_left" | "pad_right" => text_fn(args, 2, 3, |a| {
            let s = text(&a[0])?;
            let width = a[1].as_int()?;
            let fill = match a.get(2) {
                Some(f) => text(f)?.into_owned(),
                None => " ".into(),
            };
            let mut chars = fill.chars();
            let (Some(fill), None) = (chars.next(), chars.next()) else {
                return Err(custom(format!(
                    "{name}: the fill must be one character, not {fill:?}"
                )));
            };
            if !(0..=MAX_PAD).contains(&width) {
                return Err(custom(format!(
                    "{name}: the width must be between 0 and {MAX_PAD}, not {width}"
                )));
            }
            let missing = (width as usize).saturating_sub(s.chars().count());
            let pad: String = std::iter::repeat_n(fill, missing).collect();
            Ok(if name == "pad_left" {
                pad + &s
            } else {
                s.into_owned() + &pad
            }
            .into())
        }),
        "substring" => text_fn(args, 2, 3, |a| {
            let s = text(&a[0])?;
            let start = a[1].as_int()?;
            let end = match a.get(2) {
                Some(len) => {
                    let len = len.as_int()?;
                    if len < 0 {
                        return Err(custom(format!(
                            "substring: the length must not be negative, not {len}"
                        )));
                    }
                    start.saturating_add(len)
                }
                None => i64::MAX,
            };
            // positions are 1-based and clipped to the text, as in SQL
            let from = usize::try_from(start.max(1) - 1).unwrap_or(usize::MAX);
            let to = usize::try_from(end.max(1) - 1).unwrap_or(usize::MAX);
            let out: String = s.chars().skip(from).take(to.saturating_sub(from)).collect();
            Ok(out.into())
        }),
        "str::substring" => str_substring(argument),
        // evalexpr's overflows (a panic in a debug build) on the smallest int64
        "math::abs" => match argument {
            Value::Int(i) => i
                .checked_abs()
                .map(Value::Int)
                .ok_or_else(|| custom(format!("math::abs({i}) does not fit in an int64"))),
            Value::Float(f) => Ok(Value::Float(f.abs())),
            other => Err(EvalexprError::expected_number(other.clone())),
        },
        _ => return None,
    })
}

/// evalexpr's `str::substring(s, start, end)` (byte offsets, 0-based), except that an
/// offset inside a character is an error instead of a panic.
fn str_substring(argument: &Value) -> EvalexprResult<Value> {
    let args = argument.as_ranged_len_tuple(2..=3)?;
    let s = args[0].as_string()?;
    let start = usize::try_from(args[1].as_int()?).map_err(|_| EvalexprError::OutOfBoundsAccess)?;
    let end = match args.get(2) {
        Some(e) => usize::try_from(e.as_int()?).map_err(|_| EvalexprError::OutOfBoundsAccess)?,
        None => s.len(),
    };
    s.get(start..end)
        .map(Value::from)
        .ok_or(EvalexprError::OutOfBoundsAccess)
}

/// Runs `f` on `args` after checking their number; a NULL argument makes the result NULL.
fn text_fn(
    args: &[Value],
    min: usize,
    max: usize,
    f: impl FnOnce(&[Value]) -> EvalexprResult<Value>,
) -> EvalexprResult<Value> {
    if !(min..=max).contains(&args.len()) {
        return Err(EvalexprError::WrongFunctionArgumentAmount {
            expected: min..=max,
            actual: args.len(),
        });
    }
    if args.iter().any(|a| matches!(a, Value::Empty)) {
        return Ok(Value::Empty);
    }
    f(args)
}

/// A text argument: a string, or a number as its text (`pad_left(zip, 5, "0")` on an
/// int64 column).
fn text(v: &Value) -> EvalexprResult<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Ok(s.as_str().into()),
        Value::Int(_) | Value::Float(_) => Ok(v.str_from().into()),
        other => Err(EvalexprError::expected_string(other.clone())),
    }
}

fn regex<'a>(regexes: &'a Regexes, pattern: &Value) -> EvalexprResult<&'a Regex> {
    let p = pattern.as_string()?;
    // every literal pattern was compiled when the expression was built
    regexes
        .0
        .get(&p)
        .ok_or_else(|| custom(format!("the pattern {p:?} was not checked before the run")))
}

fn custom(msg: impl Into<String>) -> EvalexprError {
    EvalexprError::CustomMessage(msg.into())
}
