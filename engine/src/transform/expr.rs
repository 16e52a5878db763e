//! `filter` and `derive`: expressions over a row's columns, in the evalexpr language,
//! evaluated per row (see the module docs of `transform` for the language and NULL rules).
//!
//! Only the columns an expression names are read, into one reusable slot each (strings
//! reuse their buffer), and evaluation reads them through a read-only context: an
//! expression cannot assign, and it sees no other state.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use evalexpr::{Context, EvalexprError, EvalexprResult, Node, Operator, Value};

use super::functions::{self, Regexes};
use super::{column_index, fields_of, parse_type, schema_like, type_at, Transform};
use ferry_core::types::FerryType;
use ferry_core::values::{days_to_date, preview, ColumnBuilder};
use ferry_core::{Error, Result};

/// A parsed expression and the variables (columns) it reads, in first-use order.
struct Compiled {
    text: String,
    node: Node,
    vars: Vec<String>,
    regexes: Regexes,
}

fn compile(expr: &str, what: &str) -> Result<Compiled> {
    let node = evalexpr::build_operator_tree(expr)
        .map_err(|e| Error::config(format!("{what}: invalid expression: {e}")))?;
    functions::check_names(&node, what)?;
    let regexes = Regexes::compile(&node, what)?;
    let mut vars: Vec<String> = Vec::new();
    for v in node.iter_variable_identifiers() {
        if !vars.iter().any(|x| x == v) {
            vars.push(v.to_string());
        }
    }
    Ok(Compiled {
        text: expr.to_string(),
        node,
        vars,
        regexes,
    })
}

/// The variables of one row, read by evalexpr.
struct Row<'a> {
    names: &'a [String],
    values: &'a [Value],
    regexes: &'a Regexes,
}

impl Context for Row<'_> {
    fn get_value(&self, identifier: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|n| n == identifier)
            .map(|i| &self.values[i])
    }

    fn call_function(&self, identifier: &str, argument: &Value) -> EvalexprResult<Value> {
        functions::call(identifier, argument, self.regexes).unwrap_or_else(|| {
            Err(EvalexprError::FunctionIdentifierNotFound(
                identifier.to_string(),
            ))
        })
    }

    fn are_builtin_functions_disabled(&self) -> bool {
        false
    }

    fn set_builtin_functions_disabled(&mut self, disabled: bool) -> EvalexprResult<()> {
        if disabled {
            Err(EvalexprError::BuiltinFunctionsCannotBeDisabled)
        } else {
            Ok(())
        }
    }
}

/// Evaluates `node` with SQL's NULL rules on top of evalexpr (which evaluates every operand
/// and fails on `()`): `&&`, `||` and `!` use three-valued logic (`NULL || true` is true,
/// `NULL && false` is false, otherwise NULL), and any other subexpression that fails while
/// it reads a NULL column is NULL.
fn eval3(node: &Node, row: &Row) -> EvalexprResult<Value> {
    let children = node.children();
    let logic = |op: &Operator| matches!(op, Operator::And | Operator::Or);
    match node.operator() {
        Operator::RootNode if children.len() == 1 => eval3(&children[0], row),
        op if logic(op) && children.len() == 2 => {
            let a = eval3(&children[0], row)?;
            let b = eval3(&children[1], row)?;
            let is_and = matches!(op, Operator::And);
            let truth = |v: &Value| match v {
                Value::Boolean(b) => Ok(Some(*b)),
                Value::Empty => Ok(None),
                other => Err(EvalexprError::ExpectedBoolean {
                    actual: other.clone(),
                }),
            };
            Ok(match (truth(&a)?, truth(&b)?) {
                (Some(x), Some(y)) => Value::Boolean(if is_and { x && y } else { x || y }),
                (Some(x), None) | (None, Some(x)) if x != is_and => Value::Boolean(x),
                _ => Value::Empty,
            })
        }
        Operator::Not if children.len() == 1 => match eval3(&children[0], row)? {
            Value::Boolean(b) => Ok(Value::Boolean(!b)),
            Value::Empty => Ok(Value::Empty),
            other => Err(EvalexprError::ExpectedBoolean { actual: other }),
        },
        _ => node.eval_with_context(row).or_else(|e| {
            let reads_null = node
                .iter_variable_identifiers()
                .any(|v| matches!(row.get_value(v), Some(Value::Empty)));
            if reads_null {
                Ok(Value::Empty)
            } else {
                Err(e)
            }
        }),
    }
}

/// Reads one column's values into evalexpr values.
enum Getter<'a> {
    Int(&'a arrow_array::Int64Array),
    Float(&'a arrow_array::Float64Array),
    Decimal(&'a arrow_array::Decimal128Array, f64),
    Bool(&'a BooleanArray),
    Text(&'a arrow_array::StringArray),
    Binary(&'a arrow_array::BinaryArray),
    Date(&'a arrow_array::Date32Array),
    Timestamp(&'a arrow_array::TimestampMicrosecondArray),
}

fn set_text(slot: &mut Value) -> &mut String {
    if !matches!(slot, Value::String(_)) {
        *slot = Value::String(String::new());
    }
    let Value::String(s) = slot else {
        unreachable!()
    };
    s.clear();
    s
}

impl<'a> Getter<'a> {
    fn new(col: &'a ArrayRef, ty: FerryType) -> Getter<'a> {
        match ty {
            FerryType::Int64 => Getter::Int(col.as_primitive::<Int64Type>()),
            FerryType::Float64 => Getter::Float(col.as_primitive::<Float64Type>()),
            FerryType::Decimal { scale, .. } => Getter::Decimal(
                col.as_primitive::<Decimal128Type>(),
                10f64.powi(scale as i32),
            ),
            FerryType::Bool => Getter::Bool(col.as_boolean()),
            FerryType::String | FerryType::Json => Getter::Text(col.as_string::<i32>()),
            FerryType::Binary => Getter::Binary(col.as_binary::<i32>()),
            FerryType::Date => Getter::Date(col.as_primitive::<Date32Type>()),
            FerryType::Timestamp => {
                Getter::Timestamp(col.as_primitive::<TimestampMicrosecondType>())
            }
        }
    }

    /// Loads row `r` into `slot` (NULL is `()`).
    fn load(&self, r: usize, slot: &mut Value) {
        let array: &dyn Array = match self {
            Getter::Int(a) => *a,
            Getter::Float(a) => *a,
            Getter::Decimal(a, _) => *a,
            Getter::Bool(a) => *a,
            Getter::Text(a) => *a,
            Getter::Binary(a) => *a,
            Getter::Date(a) => *a,
            Getter::Timestamp(a) => *a,
        };
        if array.is_null(r) {
            *slot = Value::Empty;
            return;
        }
        match self {
            Getter::Int(a) => *slot = Value::Int(a.value(r)),
            Getter::Float(a) => *slot = Value::Float(a.value(r)),
            Getter::Decimal(a, div) => *slot = Value::Float(a.value(r) as f64 / div),
            Getter::Bool(a) => *slot = Value::Boolean(a.value(r)),
            Getter::Text(a) => set_text(slot).push_str(a.value(r)),
            Getter::Binary(a) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode_string(a.value(r), set_text(slot));
            }
            Getter::Date(a) => {
                let d = a.value(r);
                let s = set_text(slot);
                match days_to_date(d) {
                    Some(d) => write!(s, "{}", d.format("%Y-%m-%d")),
                    None => write!(s, "{d}"),
                }
                .expect("writing to a String");
            }
            Getter::Timestamp(a) => {
                let us = a.value(r);
                let s = set_text(slot);
                match chrono::DateTime::from_timestamp_micros(us) {
                    Some(t) => write!(s, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
                    None => write!(s, "{us}"),
                }
                .expect("writing to a String");
            }
        }
    }
}

/// A value standing for a column of type `ty`, to type-check an expression before the run.
fn sample(ty: FerryType) -> Value {
    match ty {
        FerryType::Int64 => Value::Int(1),
        FerryType::Float64 | FerryType::Decimal { .. } => Value::Float(1.0),
        FerryType::Bool => Value::Boolean(true),
        FerryType::String | FerryType::Json | FerryType::Binary => Value::String("a".into()),
        FerryType::Date => Value::String("2024-01-01".into()),
        FerryType::Timestamp => Value::String("2024-01-01T00:00:00.000000Z".into()),
    }
}

/// Whether an evaluation error depends on the values (a division by zero) rather than on
/// the expression's types (those are config errors found before the run).
fn depends_on_values(e: &EvalexprError) -> bool {
    matches!(
        e,
        EvalexprError::AdditionError { .. }
            | EvalexprError::SubtractionError { .. }
            | EvalexprError::NegationError { .. }
            | EvalexprError::MultiplicationError { .. }
            | EvalexprError::DivisionError { .. }
            | EvalexprError::ModulationError { .. }
            | EvalexprError::OutOfBoundsAccess
            | EvalexprError::CustomMessage(_)
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Float(_) => "a float",
        Value::Int(_) => "an integer",
        Value::Boolean(_) => "a boolean",
        Value::Tuple(_) => "a tuple",
        Value::Empty => "NULL",
    }
}

impl Compiled {
    /// The columns the expression reads; unknown names are config errors.
    fn resolve(&self, schema: &Schema, what: &str) -> Result<Vec<usize>> {
        self.vars
            .iter()
            .map(|v| column_index(schema, v, what))
            .collect()
    }

    /// Evaluates the expression on a sample row of `schema`'s types: the result, or `None`
    /// when the error depends on the values. Type errors are config errors.
    fn check(&self, schema: &Schema, what: &str) -> Result<Option<Value>> {
        let idx = self.resolve(schema, what)?;
        let values: Vec<Value> = idx.iter().map(|i| sample(type_at(schema, *i))).collect();
        let row = Row {
            names: &self.vars,
            values: &values,
            regexes: &self.regexes,
        };
        match eval3(&self.node, &row) {
            Ok(v) => Ok(Some(v)),
            Err(e) if depends_on_values(&e) => Ok(None),
            Err(e) => Err(Error::config(format!("{what}: {e}"))),
        }
    }
}

/// Evaluates a compiled expression row by row over one batch.
struct Evaluator<'a> {
    expr: &'a Compiled,
    getters: Vec<Getter<'a>>,
    values: Vec<Value>,
}

impl<'a> Evaluator<'a> {
    fn new(expr: &'a Compiled, batch: &'a RecordBatch, what: &str) -> Result<Self> {
        let schema = batch.schema_ref();
        let idx = expr.resolve(schema, what)?;
        let getters = idx
            .iter()
            .map(|i| Getter::new(batch.column(*i), type_at(schema, *i)))
            .collect();
        Ok(Evaluator {
            expr,
            getters,
            values: vec![Value::Empty; idx.len()],
        })
    }

    /// The value for row `r` (`None`: NULL); an error that is not NULL's doing is a data
    /// error.
    fn eval(&mut self, r: usize, what: &str) -> Result<Option<Value>> {
        for (g, slot) in self.getters.iter().zip(self.values.iter_mut()) {
            g.load(r, slot);
        }
        let row = Row {
            names: &self.expr.vars,
            values: &self.values,
            regexes: &self.expr.regexes,
        };
        match eval3(&self.expr.node, &row) {
            Ok(Value::Empty) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(Error::data(format!("{what}: {e}")).with("values", self.describe_row())),
        }
    }

    fn describe_row(&self) -> String {
        self.expr
            .vars
            .iter()
            .zip(&self.values)
            .map(|(n, v)| format!("{n} = {}", preview(&v.to_string())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------- whole-column evaluation
//
// Most expressions are columns and constants joined by arithmetic, comparisons and
// `&&`/`||`/`!`. Those are evaluated a whole batch at a time here, with exactly the results
// of the per-row path (evalexpr's operators under `eval3`'s NULL rules): evalexpr evaluates
// every operand first, so an error (an operand is NULL, a division by zero) travels up to the
// nearest `&&`/`||`/`!` or the root, where it becomes NULL if the subexpression reads a NULL
// column and is a real error otherwise; `==`/`!=` compare NULL as `()` and do not fail. A
// batch with a real error, and any expression using something else (functions, strings
// built with `+`, dates, timestamps, binary), goes through the per-row path.

/// Static types of a whole-column value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Empty,
}

#[derive(Debug, Clone, Copy)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Lt,
    Ge,
    Le,
}

/// A subexpression without `&&`, `||`, `!`.
enum Term {
    Col(usize, Ty),
    Const(Value, Ty),
    Arith(ArithOp, Box<Term>, Box<Term>, Ty),
    Neg(Box<Term>, Ty),
    Cmp(CmpOp, Box<Term>, Box<Term>),
    Eq(bool, Box<Term>, Box<Term>),
}

/// The three-valued top of an expression.
enum Logic {
    And(Box<Logic>, Box<Logic>),
    Or(Box<Logic>, Box<Logic>),
    Not(Box<Logic>),
    /// A maximal subexpression without logic operators, and the slots it reads.
    Leaf(Term, Vec<usize>),
}

impl Term {
    fn ty(&self) -> Ty {
        match self {
            Term::Col(_, t) | Term::Const(_, t) | Term::Arith(.., t) | Term::Neg(_, t) => *t,
            Term::Cmp(..) | Term::Eq(..) => Ty::Bool,
        }
    }

    fn slots(&self, out: &mut Vec<usize>) {
        match self {
            Term::Col(s, _) => {
                if !out.contains(s) {
                    out.push(*s)
                }
            }
            Term::Const(..) => {}
            Term::Neg(a, _) => a.slots(out),
            Term::Arith(_, a, b, _) | Term::Cmp(_, a, b) | Term::Eq(_, a, b) => {
                a.slots(out);
                b.slots(out);
            }
        }
    }
}

fn is_logic(op: &Operator) -> bool {
    matches!(op, Operator::And | Operator::Or | Operator::Not)
}

/// Compiles `node` for whole-column evaluation over columns of types `types` (one per
/// variable slot); `None` when it uses anything the per-row path must handle.
fn plan_logic(node: &Node, vars: &[String], types: &[FerryType]) -> Option<Logic> {
    let ch = node.children();
    match node.operator() {
        Operator::RootNode if ch.len() == 1 => plan_logic(&ch[0], vars, types),
        Operator::And | Operator::Or if ch.len() == 2 => {
            let a = Box::new(plan_logic(&ch[0], vars, types)?);
            let b = Box::new(plan_logic(&ch[1], vars, types)?);
            for side in [&a, &b] {
                if let Logic::Leaf(t, _) = side.as_ref() {
                    if !matches!(t.ty(), Ty::Bool | Ty::Empty) {
                        return None;
                    }
                }
            }
            Some(if matches!(node.operator(), Operator::And) {
                Logic::And(a, b)
            } else {
                Logic::Or(a, b)
            })
        }
        Operator::Not if ch.len() == 1 => {
            let a = plan_logic(&ch[0], vars, types)?;
            if let Logic::Leaf(t, _) = &a {
                if !matches!(t.ty(), Ty::Bool | Ty::Empty) {
                    return None;
                }
            }
            Some(Logic::Not(Box::new(a)))
        }
        _ => {
            let t = plan_term(node, vars, types)?;
            let mut slots = Vec::new();
            t.slots(&mut slots);
            Some(Logic::Leaf(t, slots))
        }
    }
}

fn plan_term(node: &Node, vars: &[String], types: &[FerryType]) -> Option<Term> {
    let ch = node.children();
    let numeric = |t: Ty| matches!(t, Ty::Int | Ty::Float);
    let op = node.operator();
    if is_logic(op) {
        return None; // logic inside arithmetic or comparisons: per row
    }
    Some(match op {
        Operator::VariableIdentifierRead { identifier } => {
            let slot = vars.iter().position(|v| v == identifier)?;
            let ty = match types[slot] {
                FerryType::Int64 => Ty::Int,
                FerryType::Float64 | FerryType::Decimal { .. } => Ty::Float,
                FerryType::Bool => Ty::Bool,
                FerryType::String | FerryType::Json => Ty::Str,
                _ => return None,
            };
            Term::Col(slot, ty)
        }
        Operator::Const { value } => {
            let ty = match value {
                Value::Int(_) => Ty::Int,
                Value::Float(_) => Ty::Float,
                Value::Boolean(_) => Ty::Bool,
                Value::String(_) => Ty::Str,
                Value::Empty => Ty::Empty,
                Value::Tuple(_) => return None,
            };
            Term::Const(value.clone(), ty)
        }
        // `( … )` is a root node with one child; `()` one without
        Operator::RootNode if ch.len() == 1 => return plan_term(&ch[0], vars, types),
        Operator::RootNode if ch.is_empty() => Term::Const(Value::Empty, Ty::Empty),
        Operator::Add | Operator::Sub | Operator::Mul | Operator::Div | Operator::Mod
            if ch.len() == 2 =>
        {
            let a = plan_term(&ch[0], vars, types)?;
            let b = plan_term(&ch[1], vars, types)?;
            if !numeric(a.ty()) || !numeric(b.ty()) {
                return None;
            }
            let ty = if a.ty() == Ty::Int && b.ty() == Ty::Int {
                Ty::Int
            } else {
                Ty::Float
            };
            let op = match op {
                Operator::Add => ArithOp::Add,
                Operator::Sub => ArithOp::Sub,
                Operator::Mul => ArithOp::Mul,
                Operator::Div => ArithOp::Div,
                _ => ArithOp::Mod,
            };
            Term::Arith(op, Box::new(a), Box::new(b), ty)
        }
        Operator::Neg if ch.len() == 1 => {
            let a = plan_term(&ch[0], vars, types)?;
            if !numeric(a.ty()) {
                return None;
            }
            let ty = a.ty();
            Term::Neg(Box::new(a), ty)
        }
        Operator::Gt | Operator::Lt | Operator::Geq | Operator::Leq if ch.len() == 2 => {
            let a = plan_term(&ch[0], vars, types)?;
            let b = plan_term(&ch[1], vars, types)?;
            let ok =
                (numeric(a.ty()) && numeric(b.ty())) || (a.ty() == Ty::Str && b.ty() == Ty::Str);
            if !ok {
                return None;
            }
            let op = match op {
                Operator::Gt => CmpOp::Gt,
                Operator::Lt => CmpOp::Lt,
                Operator::Geq => CmpOp::Ge,
                _ => CmpOp::Le,
            };
            Term::Cmp(op, Box::new(a), Box::new(b))
        }
        Operator::Eq | Operator::Neq if ch.len() == 2 => {
            let a = plan_term(&ch[0], vars, types)?;
            let b = plan_term(&ch[1], vars, types)?;
            Term::Eq(matches!(op, Operator::Neq), Box::new(a), Box::new(b))
        }
        _ => return None,
    })
}

/// Row states of a whole-column value.
const OK: u8 = 0;
const NULL: u8 = 1;
const ERR: u8 = 2;

/// Values of one subexpression over a batch.
enum Vals<'a> {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Str(&'a arrow_array::StringArray),
    ConstStr(&'a str),
    Empty,
}

struct Column<'a> {
    vals: Vals<'a>,
    state: Vec<u8>,
}

impl Column<'_> {
    fn float(&self, r: usize) -> f64 {
        match &self.vals {
            Vals::Int(v) => v[r] as f64,
            Vals::Float(v) => v[r],
            _ => f64::NAN,
        }
    }

    fn text(&self, r: usize) -> &str {
        match &self.vals {
            Vals::Str(a) => a.value(r),
            Vals::ConstStr(s) => s,
            _ => "",
        }
    }
}

fn states(array: &dyn Array) -> Vec<u8> {
    match array.logical_nulls() {
        Some(n) => n.iter().map(|v| if v { OK } else { NULL }).collect(),
        None => vec![OK; array.len()],
    }
}

fn eval_term<'a>(t: &'a Term, cols: &[&'a ArrayRef], n: usize) -> Column<'a> {
    match t {
        Term::Col(slot, ty) => {
            let a = cols[*slot];
            let vals = match ty {
                Ty::Int => Vals::Int(a.as_primitive::<Int64Type>().values().to_vec()),
                Ty::Bool => Vals::Bool(a.as_boolean().values().iter().collect()),
                Ty::Str => Vals::Str(a.as_string::<i32>()),
                _ => match a.data_type() {
                    arrow_schema::DataType::Float64 => {
                        Vals::Float(a.as_primitive::<Float64Type>().values().to_vec())
                    }
                    arrow_schema::DataType::Decimal128(_, scale) => {
                        let div = 10f64.powi(*scale as i32);
                        Vals::Float(
                            a.as_primitive::<Decimal128Type>()
                                .values()
                                .iter()
                                .map(|v| *v as f64 / div)
                                .collect(),
                        )
                    }
                    _ => Vals::Empty,
                },
            };
            Column {
                vals,
                state: states(a.as_ref()),
            }
        }
        Term::Const(v, _) => {
            let vals = match v {
                Value::Int(i) => Vals::Int(vec![*i; n]),
                Value::Float(f) => Vals::Float(vec![*f; n]),
                Value::Boolean(b) => Vals::Bool(vec![*b; n]),
                Value::String(s) => Vals::ConstStr(s),
                _ => Vals::Empty,
            };
            let state = vec![if matches!(v, Value::Empty) { NULL } else { OK }; n];
            Column { vals, state }
        }
        Term::Arith(op, a, b, ty) => {
            let (a, b) = (eval_term(a, cols, n), eval_term(b, cols, n));
            // an operand that is an error stays one; NULL in arithmetic is an error
            let mut state: Vec<u8> = a
                .state
                .iter()
                .zip(&b.state)
                .map(|(x, y)| if *x == OK && *y == OK { OK } else { ERR })
                .collect();
            let vals = if *ty == Ty::Int {
                let (Vals::Int(x), Vals::Int(y)) = (&a.vals, &b.vals) else {
                    unreachable!("typed at plan time")
                };
                let mut out = Vec::with_capacity(n);
                for r in 0..n {
                    let v = match op {
                        ArithOp::Add => x[r].checked_add(y[r]),
                        ArithOp::Sub => x[r].checked_sub(y[r]),
                        ArithOp::Mul => x[r].checked_mul(y[r]),
                        ArithOp::Div => x[r].checked_div(y[r]),
                        ArithOp::Mod => x[r].checked_rem(y[r]),
                    };
                    if v.is_none() && state[r] == OK {
                        state[r] = ERR;
                    }
                    out.push(v.unwrap_or(0));
                }
                Vals::Int(out)
            } else {
                Vals::Float(
                    (0..n)
                        .map(|r| {
                            let (x, y) = (a.float(r), b.float(r));
                            match op {
                                ArithOp::Add => x + y,
                                ArithOp::Sub => x - y,
                                ArithOp::Mul => x * y,
                                ArithOp::Div => x / y,
                                ArithOp::Mod => x % y,
                            }
                        })
                        .collect(),
                )
            };
            Column { vals, state }
        }
        Term::Neg(a, _) => {
            let a = eval_term(a, cols, n);
            let mut state: Vec<u8> = a
                .state
                .iter()
                .map(|x| if *x == OK { OK } else { ERR })
                .collect();
            let vals = match &a.vals {
                Vals::Int(x) => Vals::Int(
                    x.iter()
                        .zip(state.iter_mut())
                        .map(|(v, s)| {
                            v.checked_neg().unwrap_or_else(|| {
                                *s = ERR;
                                0
                            })
                        })
                        .collect(),
                ),
                _ => Vals::Float((0..n).map(|r| -a.float(r)).collect()),
            };
            Column { vals, state }
        }
        Term::Cmp(op, ta, tb) => {
            let (a, b) = (eval_term(ta, cols, n), eval_term(tb, cols, n));
            let state: Vec<u8> = a
                .state
                .iter()
                .zip(&b.state)
                .map(|(x, y)| if *x == OK && *y == OK { OK } else { ERR })
                .collect();
            let ord = |r: usize| -> Option<std::cmp::Ordering> {
                match (&a.vals, &b.vals) {
                    (Vals::Int(x), Vals::Int(y)) => Some(x[r].cmp(&y[r])),
                    (Vals::Str(_) | Vals::ConstStr(_), Vals::Str(_) | Vals::ConstStr(_)) => {
                        Some(a.text(r).cmp(b.text(r)))
                    }
                    _ => a.float(r).partial_cmp(&b.float(r)),
                }
            };
            let vals = (0..n)
                .map(|r| {
                    if state[r] != OK {
                        return false;
                    }
                    let o = ord(r);
                    match op {
                        CmpOp::Gt => o == Some(std::cmp::Ordering::Greater),
                        CmpOp::Lt => o == Some(std::cmp::Ordering::Less),
                        CmpOp::Ge => matches!(
                            o,
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        ),
                        CmpOp::Le => matches!(
                            o,
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        ),
                    }
                })
                .collect();
            Column {
                vals: Vals::Bool(vals),
                state,
            }
        }
        Term::Eq(neq, ta, tb) => {
            let same_type = ta.ty() == tb.ty();
            let (a, b) = (eval_term(ta, cols, n), eval_term(tb, cols, n));
            let mut state = vec![OK; n];
            let vals = (0..n)
                .map(|r| {
                    let eq = match (a.state[r], b.state[r]) {
                        (ERR, _) | (_, ERR) => {
                            state[r] = ERR;
                            return false;
                        }
                        (NULL, NULL) => true,
                        (NULL, _) | (_, NULL) => false,
                        _ if !same_type => false,
                        _ => match (&a.vals, &b.vals) {
                            (Vals::Int(x), Vals::Int(y)) => x[r] == y[r],
                            (Vals::Float(x), Vals::Float(y)) => x[r] == y[r],
                            (Vals::Bool(x), Vals::Bool(y)) => x[r] == y[r],
                            _ => a.text(r) == b.text(r),
                        },
                    };
                    eq != *neq
                })
                .collect();
            Column {
                vals: Vals::Bool(vals),
                state,
            }
        }
    }
}

/// Maps a leaf's errors: NULL when the leaf reads a NULL column in that row, else a real
/// error (`None`: the batch goes through the per-row path).
fn settle(mut c: Column<'_>, slots: &[usize], cols: &[&ArrayRef]) -> Option<Column<'static>> {
    for r in 0..c.state.len() {
        if c.state[r] == ERR {
            if slots.iter().any(|s| cols[*s].is_null(r)) {
                c.state[r] = NULL;
            } else {
                return None;
            }
        }
    }
    let vals = match c.vals {
        Vals::Int(v) => Vals::Int(v),
        Vals::Float(v) => Vals::Float(v),
        Vals::Bool(v) => Vals::Bool(v),
        // string results are not planned at the top
        _ => Vals::Empty,
    };
    Some(Column {
        vals,
        state: c.state,
    })
}

/// Three-valued result per row: `Some(bool)` or NULL; `None` when a row has a real error.
fn eval_logic(l: &Logic, cols: &[&ArrayRef], n: usize) -> Option<Vec<Option<bool>>> {
    Some(match l {
        Logic::Leaf(t, slots) => {
            let c = settle(eval_term(t, cols, n), slots, cols)?;
            (0..n)
                .map(|r| match (&c.vals, c.state[r]) {
                    (Vals::Bool(v), OK) => Some(v[r]),
                    _ => None,
                })
                .collect()
        }
        Logic::Not(a) => eval_logic(a, cols, n)?
            .into_iter()
            .map(|v| v.map(|b| !b))
            .collect(),
        Logic::And(a, b) | Logic::Or(a, b) => {
            let is_and = matches!(l, Logic::And(..));
            let (x, y) = (eval_logic(a, cols, n)?, eval_logic(b, cols, n)?);
            x.into_iter()
                .zip(y)
                .map(|(p, q)| match (p, q) {
                    (Some(p), Some(q)) => Some(if is_and { p && q } else { p || q }),
                    (Some(v), None) | (None, Some(v)) if v != is_and => Some(v),
                    _ => None,
                })
                .collect()
        }
    })
}

/// A whole-column plan of an expression for one batch's schema.
struct Fast {
    top: Logic,
}

impl Fast {
    fn plan(expr: &Compiled, schema: &Schema) -> Option<Fast> {
        let idx = expr.resolve(schema, "").ok()?;
        let types: Vec<FerryType> = idx.iter().map(|i| type_at(schema, *i)).collect();
        Some(Fast {
            top: plan_logic(&expr.node, &expr.vars, &types)?,
        })
    }

    fn columns<'a>(expr: &Compiled, batch: &'a RecordBatch) -> Option<Vec<&'a ArrayRef>> {
        let idx = expr.resolve(batch.schema_ref(), "").ok()?;
        Some(idx.iter().map(|i| batch.column(*i)).collect())
    }

    /// Filter: which rows to keep; `None` for the per-row path.
    fn keep(&self, expr: &Compiled, batch: &RecordBatch) -> Option<Vec<bool>> {
        let cols = Self::columns(expr, batch)?;
        if let Logic::Leaf(t, _) = &self.top {
            if !matches!(t.ty(), Ty::Bool | Ty::Empty) {
                return None;
            }
        }
        let v = eval_logic(&self.top, &cols, batch.num_rows())?;
        Some(v.into_iter().map(|x| x == Some(true)).collect())
    }

    /// Derive into float64: the column straight from whole-column floats, when the
    /// expression gives floats and every one is finite; `None`: [`Fast::values`] and the
    /// per-row path decide (they give the same column, or the error).
    fn float64(&self, expr: &Compiled, batch: &RecordBatch) -> Option<ArrayRef> {
        let Logic::Leaf(t, slots) = &self.top else {
            return None;
        };
        if t.ty() != Ty::Float {
            return None;
        }
        let cols = Self::columns(expr, batch)?;
        let c = settle(eval_term(t, &cols, batch.num_rows()), slots, &cols)?;
        let Vals::Float(v) = c.vals else {
            return None;
        };
        if v.iter()
            .zip(&c.state)
            .any(|(x, s)| *s == OK && !x.is_finite())
        {
            return None;
        }
        let nulls = c
            .state
            .iter()
            .any(|s| *s != OK)
            .then(|| arrow_buffer::NullBuffer::from_iter(c.state.iter().map(|s| *s == OK)));
        Some(Arc::new(arrow_array::Float64Array::new(v.into(), nulls)))
    }

    /// Derive: the values as evalexpr values (numbers and booleans only); `None` for the
    /// per-row path.
    fn values(&self, expr: &Compiled, batch: &RecordBatch) -> Option<Vec<Value>> {
        let cols = Self::columns(expr, batch)?;
        let n = batch.num_rows();
        match &self.top {
            Logic::Leaf(t, _) if !matches!(t.ty(), Ty::Int | Ty::Float | Ty::Bool | Ty::Empty) => {
                None
            }
            Logic::Leaf(t, slots) => {
                let c = settle(eval_term(t, &cols, n), slots, &cols)?;
                Some(
                    (0..n)
                        .map(|r| match (&c.vals, c.state[r]) {
                            (_, s) if s != OK => Value::Empty,
                            (Vals::Int(v), _) => Value::Int(v[r]),
                            (Vals::Float(v), _) => Value::Float(v[r]),
                            (Vals::Bool(v), _) => Value::Boolean(v[r]),
                            _ => Value::Empty,
                        })
                        .collect(),
                )
            }
            top => Some(
                eval_logic(top, &cols, n)?
                    .into_iter()
                    .map(|v| v.map_or(Value::Empty, Value::Boolean))
                    .collect(),
            ),
        }
    }
}

// ---------------------------------------------------------------- filter

struct Filter(Compiled);

pub(super) fn filter(expr: &str) -> Result<Arc<dyn Transform>> {
    let what = format!("filter({})", preview(expr));
    Ok(Arc::new(Filter(compile(expr, &what)?)))
}

impl Transform for Filter {
    fn describe(&self) -> String {
        format!("filter({})", preview(&self.0.text))
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let what = self.describe();
        match self.0.check(input, &what)? {
            None | Some(Value::Boolean(_) | Value::Empty) => Ok(input.clone()),
            Some(v) => Err(Error::config(format!(
                "{what}: the expression gives {}, not true or false",
                kind(&v)
            ))),
        }
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        Ok(self.apply_keeping(batch)?.0)
    }

    fn apply_keeping(&self, batch: RecordBatch) -> Result<(RecordBatch, Option<Vec<bool>>)> {
        let what = self.describe();
        let n = batch.num_rows();
        let fast = Fast::plan(&self.0, batch.schema_ref()).and_then(|f| f.keep(&self.0, &batch));
        let mut keep = Vec::with_capacity(n);
        if let Some(k) = fast {
            keep = k;
        } else {
            let mut ev = Evaluator::new(&self.0, &batch, &what)?;
            for r in 0..n {
                keep.push(match ev.eval(r, &what)? {
                    None => false,
                    Some(Value::Boolean(b)) => b,
                    Some(v) => {
                        return Err(Error::data(format!(
                            "{what}: the expression gives {} (`{v}`), not true or false",
                            kind(&v)
                        )))
                    }
                });
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok((batch, None));
        }
        let out =
            arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(keep.clone()))?;
        Ok((out, Some(keep)))
    }
}

// ---------------------------------------------------------------- derive

struct Derive {
    column: String,
    expr: Compiled,
    ty: FerryType,
}

pub(super) fn derive(column: &str, expr: &str, as_type: &str) -> Result<Arc<dyn Transform>> {
    let what = format!("derive({column})");
    if column.trim().is_empty() {
        return Err(Error::config(format!("{what}: the column name is empty")));
    }
    let ty = parse_type(as_type, &what)?;
    Ok(Arc::new(Derive {
        column: column.into(),
        expr: compile(expr, &what)?,
        ty,
    }))
}

/// Whether a value of `v`'s kind can go into a column of type `ty` (strings are parsed,
/// so they can go anywhere; a float goes into int64 when it is whole).
fn fits(v: &Value, ty: FerryType) -> bool {
    use FerryType as T;
    match v {
        Value::Empty | Value::String(_) => true,
        Value::Int(_) => matches!(
            ty,
            T::Int64 | T::Float64 | T::Decimal { .. } | T::String | T::Json | T::Timestamp
        ),
        Value::Float(_) => matches!(
            ty,
            T::Int64 | T::Float64 | T::Decimal { .. } | T::String | T::Json
        ),
        Value::Boolean(_) => matches!(ty, T::Bool | T::String | T::Json),
        Value::Tuple(_) => false,
    }
}

/// The array `A` of `values` when each is empty (NULL) or one `pick` takes; `None` at the
/// first other value.
fn direct_column<T, A>(values: &[Value], pick: impl Fn(&Value) -> Option<T>) -> Option<ArrayRef>
where
    A: FromIterator<Option<T>> + Array + 'static,
{
    let column: A = values
        .iter()
        .map(|v| match v {
            Value::Empty => Some(None),
            v => pick(v).map(Some),
        })
        .collect::<Option<A>>()?;
    Some(Arc::new(column))
}

impl Derive {
    /// The column built straight from whole-column values when their kind is the column's
    /// type (float64 from floats, int64 from integers, bool from booleans); `None` otherwise.
    fn direct(&self, values: &[Value]) -> Option<ArrayRef> {
        match self.ty {
            FerryType::Float64 => {
                direct_column::<_, arrow_array::Float64Array>(values, |v| match v {
                    Value::Float(f) if f.is_finite() => Some(*f),
                    _ => None,
                })
            }
            FerryType::Int64 => direct_column::<_, arrow_array::Int64Array>(values, |v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            }),
            FerryType::Bool => direct_column::<_, BooleanArray>(values, |v| match v {
                Value::Boolean(b) => Some(*b),
                _ => None,
            }),
            _ => None,
        }
    }

    fn append(&self, b: &mut ColumnBuilder, v: Value, what: &str) -> Result<()> {
        use serde_json::Value as J;
        let bad = |why: String| {
            Error::data(format!(
                "{what}: the expression gives `{}`, which is not a valid {} ({why})",
                preview(&v.to_string()),
                self.ty
            ))
        };
        let result = match &v {
            Value::Empty => {
                b.append_null();
                Ok(())
            }
            Value::String(s) if self.ty == FerryType::String => b.append_text(s),
            Value::String(s) if self.ty == FerryType::Json => b.append_json(&J::String(s.clone())),
            Value::String(s) => b.append_text(s),
            Value::Int(i) => b.append_json(&J::from(*i)),
            Value::Float(f) if self.ty == FerryType::Int64 => {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    b.append_json(&J::from(*f as i64))
                } else {
                    Err("not a whole number".into())
                }
            }
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => b.append_json(&J::Number(n)),
                None => Err("not a finite number".into()),
            },
            Value::Boolean(x) => b.append_json(&J::Bool(*x)),
            Value::Tuple(_) => Err("a tuple".into()),
        };
        result.map_err(bad)
    }
}

impl Transform for Derive {
    fn describe(&self) -> String {
        format!("derive({})", self.column)
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let what = self.describe();
        if let Some(v) = self.expr.check(input, &what)? {
            if !fits(&v, self.ty) {
                return Err(Error::config(format!(
                    "{what}: the expression gives {}, which does not fit `as = \"{}\"`",
                    kind(&v),
                    self.ty
                )));
            }
        }
        let mut fields = fields_of(input);
        let field = self.ty.field(self.column.clone(), true);
        match input.index_of(&self.column) {
            Ok(i) => fields[i] = field,
            Err(_) => fields.push(field),
        }
        Ok(schema_like(input, fields))
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let what = self.describe();
        let out_schema = self.output_schema(batch.schema_ref())?;
        let n = batch.num_rows();
        let mut b = ColumnBuilder::new(self.ty, n);
        let plan = Fast::plan(&self.expr, batch.schema_ref());
        let mut direct: Option<ArrayRef> = None;
        if self.ty == FerryType::Float64 {
            direct = plan.as_ref().and_then(|f| f.float64(&self.expr, &batch));
        }
        let fast = match direct {
            Some(_) => None,
            None => plan.and_then(|f| f.values(&self.expr, &batch)),
        };
        if direct.is_some() {
        } else if let Some(values) = fast {
            direct = self.direct(&values);
            if direct.is_none() {
                for v in values {
                    self.append(&mut b, v, &what)?;
                }
            }
        } else {
            let mut ev = Evaluator::new(&self.expr, &batch, &what)?;
            for r in 0..n {
                match ev.eval(r, &what)? {
                    None => b.append_null(),
                    Some(v) => self.append(&mut b, v, &what)?,
                }
            }
        }
        let new = direct.unwrap_or_else(|| b.finish());
        let mut cols = batch.columns().to_vec();
        match batch.schema_ref().index_of(&self.column) {
            Ok(i) => cols[i] = new,
            Err(_) => cols.push(new),
        }
        RecordBatch::try_new(out_schema, cols).map_err(|e| {
            Error::internal(format!("{what}: the rewritten batch is inconsistent: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::TransformConfig;
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::Float64.field("amount", true),
            FerryType::Int64.field("qty", true),
            FerryType::String.field("status", true),
            FerryType::Timestamp.field("at", true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(Float64Array::from(vec![
                    Some(10.0),
                    Some(-1.0),
                    None,
                    Some(2.5),
                ])),
                Arc::new(Int64Array::from(vec![Some(2), Some(3), Some(1), Some(0)])),
                Arc::new(StringArray::from(vec![
                    Some("paid"),
                    Some("void"),
                    Some("paid"),
                    None,
                ])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_714_564_800_000_000), // 2024-05-01T12:00:00Z
                        Some(1_704_067_200_000_000), // 2024-01-01T00:00:00Z
                        None,
                        Some(1_714_564_800_250_000),
                    ])
                    .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap()
    }

    fn build(toml_text: &str) -> Result<Arc<dyn Transform>> {
        #[derive(serde::Deserialize)]
        struct W {
            t: TransformConfig,
        }
        toml::from_str::<W>(&format!("t = {toml_text}"))
            .unwrap()
            .t
            .build()
    }

    fn run(toml_text: &str) -> Result<RecordBatch> {
        let t = build(toml_text)?;
        let schema = t.output_schema(&batch().schema())?;
        let out = t.apply(batch())?;
        assert_eq!(out.schema(), schema);
        Ok(out)
    }

    fn ids(b: &RecordBatch) -> Vec<i64> {
        b.column(0).as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn filter_keeps_true_rows_and_drops_null() {
        let out = run(r#"{ type = "filter", expr = "amount > 0 && status == \"paid\"" }"#).unwrap();
        assert_eq!(ids(&out), [1]); // 3 has NULL amount, 4 NULL status
        let out = run(r#"{ type = "filter", expr = "status != \"void\"" }"#).unwrap();
        assert_eq!(ids(&out), [1, 3, 4]); // NULL != "void" is true: `==` compares values, () included
        let out = run(r#"{ type = "filter", expr = "is_null(amount) || amount >= 2.5" }"#).unwrap();
        assert_eq!(ids(&out), [1, 3, 4]);
        let out = run(r#"{ type = "filter", expr = "at >= \"2024-05-01\"" }"#).unwrap();
        assert_eq!(ids(&out), [1, 4]);
        let out =
            run(r#"{ type = "filter", expr = "at > \"2024-05-01T12:00:00.000000Z\"" }"#).unwrap();
        assert_eq!(ids(&out), [4], "timestamps compare chronologically");
        let out = run(r#"{ type = "filter", expr = "coalesce(amount, 100) > 50" }"#).unwrap();
        assert_eq!(ids(&out), [3]);
        // three-valued logic: NULL && false is false, NULL || true is true, !NULL is NULL
        let out = run(r#"{ type = "filter", expr = "!(amount > 0 && qty > 1)" }"#).unwrap();
        assert_eq!(ids(&out), [2, 3, 4], "row 3: NULL && false is false");
        let out = run(r#"{ type = "filter", expr = "!(amount > 0 && qty >= 1)" }"#).unwrap();
        assert_eq!(ids(&out), [2, 4], "row 3: NULL && true is NULL");
        let out = run(r#"{ type = "filter", expr = "!(amount > 0)" }"#).unwrap();
        assert_eq!(ids(&out), [2], "row 3: !NULL is NULL");
    }

    #[test]
    fn expression_errors_are_config_errors_before_the_run() {
        let e = run(r#"{ type = "filter", expr = "amout > 0" }"#).unwrap_err();
        assert!(e.to_string().contains("did you mean `amount`"), "{e}");
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid);
        let e = run(r#"{ type = "filter", expr = "amount + 1" }"#).unwrap_err();
        assert!(e.to_string().contains("not true or false"), "{e}");
        let e = run(r#"{ type = "filter", expr = "status && true" }"#).unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        let e = build(r#"{ type = "filter", expr = "amount > (" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("invalid expression"), "{e}");
        let e = run(r#"{ type = "filter", expr = "nofunc(amount)" }"#).unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        let e = run(r#"{ type = "derive", column = "x", expr = "amount = 5", as = "int64" }"#)
            .unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        let e = run(r#"{ type = "derive", column = "x", expr = "amount > 1", as = "int64" }"#)
            .unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        assert!(build(r#"{ type = "derive", column = "x", expr = "1", as = "intt" }"#).is_err());
    }

    /// `derive(t, string)` of `expr` over the test batch, as Option<String> per row.
    fn texts(expr: &str) -> Vec<Option<String>> {
        let out = run(&format!(
            "{{ type = \"derive\", column = \"t\", expr = {}, as = \"string\" }}",
            toml::Value::String(expr.into())
        ))
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let c = out.column(out.num_columns() - 1).as_string::<i32>();
        (0..c.len())
            .map(|r| (!c.is_null(r)).then(|| c.value(r).to_string()))
            .collect()
    }

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    }

    #[test]
    fn text_functions_work_per_row_and_pass_null_through() {
        // status: paid, void, paid, NULL
        assert_eq!(
            texts(r#"replace(status, "a", "A")"#),
            s(&[Some("pAid"), Some("void"), Some("pAid"), None])
        );
        assert_eq!(
            texts(r#"replace(status, "", "x")"#)[0].as_deref(),
            Some("paid")
        );
        assert_eq!(
            texts(r#"regex_replace(status, "[aeiou]+", "<$0>")"#),
            s(&[Some("p<ai>d"), Some("v<oi>d"), Some("p<ai>d"), None])
        );
        assert_eq!(
            texts(r#"regex_replace(status, "^(.)(.*)$", "${2}-$1")"#)[1].as_deref(),
            Some("oid-v")
        );
        assert_eq!(
            texts(
                r#"split("a;b;;c", ";", 2) + split("a;b;;c", ";", -1) + split("a;b", ";", 9) + "|" + split(status, "i", 1)"#
            ),
            s(&[Some("bc|pa"), Some("bc|vo"), Some("bc|pa"), None])
        );
        assert_eq!(
            texts(r#"pad_left(id, 4, "0") + pad_right(status, 6, ".")"#),
            s(&[
                Some("0001paid.."),
                Some("0002void.."),
                Some("0003paid.."),
                None
            ])
        );
        assert_eq!(
            texts(r#"pad_left("abcdef", 3)"#)[0].as_deref(),
            Some("abcdef")
        );
        assert_eq!(texts(r#"pad_left("é", 3, "·")"#)[0].as_deref(), Some("··é"));
        assert_eq!(
            texts(
                r#"substring(status, 2, 2) + "|" + substring("héllo", 2) + "|" + substring("abc", 0, 2) + "|" + substring("abc", 5)"#
            ),
            s(&[
                Some("ai|éllo|a|"),
                Some("oi|éllo|a|"),
                Some("ai|éllo|a|"),
                None
            ])
        );
        assert_eq!(
            texts(r#"coalesce(status, "none")"#),
            s(&[Some("paid"), Some("void"), Some("paid"), Some("none")])
        );
        assert_eq!(texts(r#"coalesce(status)"#)[3], None);
        assert_eq!(
            texts(r#"str::from(regex_matches(coalesce(status, ""), "^p"))"#),
            s(&[Some("true"), Some("false"), Some("true"), Some("false")])
        );
        // evalexpr's byte-offset substring errs instead of panicking inside a character
        let e = run(r#"{ type = "derive", column = "t", expr = "str::substring(\"é\", 1)", as = "string" }"#)
            .unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::DataInvalid, "{e}");
        // values that cannot work are data errors naming the transform
        let e = run(
            r#"{ type = "derive", column = "t", expr = "split(status, \",\", 0)", as = "string" }"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("count from 1"), "{e}");
        let e = run(r#"{ type = "derive", column = "t", expr = "pad_left(status, 100000)", as = "string" }"#)
            .unwrap_err();
        assert!(e.to_string().contains("between 0 and 10000"), "{e}");
    }

    #[test]
    fn function_mistakes_are_config_errors_when_built() {
        let e = build(r#"{ type = "filter", expr = "repalce(status, \"a\", \"b\") == \"x\"" }"#)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid);
        assert!(
            e.to_string()
                .contains("unknown function `repalce`; did you mean `replace`?"),
            "{e}"
        );
        let e = build(r#"{ type = "filter", expr = "frobnicate(status)" }"#)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("unknown function `frobnicate`"),
            "{e}"
        );
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = build(r#"{ type = "derive", column = "t", expr = "regex_replace(status, status, \"x\")", as = "string" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("must be a string literal"), "{e}");
        let e = build(r#"{ type = "derive", column = "t", expr = "regex_replace(status, \"(\", \"x\")", as = "string" }"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("invalid pattern"), "{e}");
        let long = "a".repeat(functions::MAX_PATTERN + 1);
        let e = build(&format!(
            r#"{{ type = "filter", expr = "regex_matches(status, \"{long}\")" }}"#
        ))
        .err()
        .unwrap();
        assert!(e.to_string().contains("at most 1000"), "{e}");
        // a pattern that would compile into a huge automaton is refused, not built
        let e = build(
            r#"{ type = "filter", expr = "regex_matches(status, \"\\\\w{1000}\\\\w{1000}\")" }"#,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("invalid pattern"), "{e}");
        // wrong argument types and counts are found before the run
        let e = run(
            r#"{ type = "derive", column = "t", expr = "replace(status, \"a\")", as = "string" }"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        let e = run(
            r#"{ type = "derive", column = "t", expr = "pad_left(status, \"5\")", as = "string" }"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
        let e = run(r#"{ type = "derive", column = "t", expr = "replace(status == \"a\", \"a\", \"b\")", as = "string" }"#)
            .unwrap_err();
        assert_eq!(e.kind(), ferry_core::ErrorKind::ConfigInvalid, "{e}");
    }

    #[test]
    fn derive_adds_or_replaces_a_typed_column() {
        let out =
            run(r#"{ type = "derive", column = "total", expr = "amount * qty", as = "float64" }"#)
                .unwrap();
        assert_eq!(out.num_columns(), 6);
        let t = out.column(5).as_primitive::<Float64Type>();
        assert_eq!(
            (t.value(0), t.value(1), t.is_null(2), t.value(3)),
            (20.0, -3.0, true, 0.0)
        );
        let out =
            run(r#"{ type = "derive", column = "qty", expr = "qty * 10", as = "int64" }"#).unwrap();
        assert_eq!(out.num_columns(), 5);
        assert_eq!(
            out.column(2).as_primitive::<Int64Type>().values().to_vec(),
            [20, 30, 10, 0]
        );
        let out = run(r#"{ type = "derive", column = "label", expr = "status + \"-\" + str::from(id)", as = "string" }"#).unwrap();
        let l = out.column(5).as_string::<i32>();
        assert_eq!((l.value(0), l.is_null(3)), ("paid-1", true));
        let out = run(r#"{ type = "derive", column = "r", expr = "round(amount)", as = "int64" }"#)
            .unwrap();
        assert_eq!(out.column(5).as_primitive::<Int64Type>().value(0), 10);
        let out = run(r#"{ type = "derive", column = "big", expr = "amount > 5", as = "bool" }"#)
            .unwrap();
        assert!(out.column(5).as_boolean().value(0));
        // a per-row error that is not NULL's doing fails, naming the transform
        let e = run(r#"{ type = "derive", column = "d", expr = "id / qty", as = "int64" }"#)
            .unwrap_err();
        assert!(e.to_string().contains("derive(d)"), "{e}");
        assert_eq!(e.kind(), ferry_core::ErrorKind::DataInvalid);
        let e = run(r#"{ type = "derive", column = "d", expr = "amount / 0", as = "float64" }"#)
            .unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{e}");
        // a string that does not parse as the type
        let e =
            run(r#"{ type = "derive", column = "d", expr = "status", as = "int64" }"#).unwrap_err();
        assert!(e.to_string().contains("not a valid int64"), "{e}");
    }

    #[test]
    fn whole_column_path_agrees_with_the_per_row_path() {
        use arrow_array::{BooleanArray, Decimal128Array};
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("a", true),
            FerryType::Int64.field("b", true),
            FerryType::Float64.field("x", true),
            FerryType::String.field("s", true),
            FerryType::Bool.field("flag", true),
            FerryType::Decimal {
                precision: 10,
                scale: 2,
            }
            .field("d", true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    None,
                    Some(0),
                    Some(-7),
                    Some(i64::MIN),
                    Some(4),
                ])),
                Arc::new(Int64Array::from(vec![
                    Some(2),
                    Some(0),
                    None,
                    Some(3),
                    Some(1),
                    Some(4),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(f64::NAN),
                    None,
                    Some(-0.0),
                    Some(2.0),
                    Some(4.0),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("p"),
                    None,
                    Some("q"),
                    Some(""),
                    Some("zz"),
                    Some("p"),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                    None,
                    Some(false),
                ])),
                Arc::new(
                    Decimal128Array::from(vec![
                        Some(150),
                        Some(151),
                        None,
                        Some(-1),
                        Some(0),
                        Some(400),
                    ])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
                ),
            ],
        )
        .unwrap();
        let exprs = [
            "a > 1",
            "a + b > 3",
            "x * 2 <= 3",
            "s == \"p\"",
            "s != ()",
            "a == ()",
            "() == ()",
            "!(a > 1) || s == \"q\"",
            "(a > 1) == (b > 2)",
            "a == 1.0",
            "a == b",
            "x == x",
            "x >= a",
            "-b < 0",
            "flag",
            "!flag",
            "flag && a > 0",
            "flag || a > 0",
            "b % 2 == 0",
            "s > \"m\" && s < \"q\"",
            "d > 1.5",
            "d == 4.0",
            "(b + x) * 2 > 1",
            "a + 1",
            "x / 2",
            "b * b",
            "a - b",
            "-x",
            "a / b",
            "a / b > 0 || flag",
            "x / 0 > 1",
            "-a > 0",
            "a * b",
            "d * 2",
            "a * 1.5",
            "b / 2.0",
        ];
        let mut planned = 0;
        let mut floats = 0;
        for text in exprs {
            let c = compile(text, "t").unwrap();
            let mut ev = Evaluator::new(&c, &batch, "t").unwrap();
            let slow: Result<Vec<Option<Value>>> =
                (0..batch.num_rows()).map(|r| ev.eval(r, "t")).collect();
            let Some(fast) = Fast::plan(&c, batch.schema_ref()) else {
                panic!("{text}: not planned");
            };
            planned += 1;
            let got = fast.values(&c, &batch);
            match slow {
                Err(e) => {
                    assert!(
                        got.is_none(),
                        "{text}: per row fails ({e}), whole column gave {got:?}"
                    );
                    assert!(fast.float64(&c, &batch).is_none(), "{text}: float64");
                }
                Ok(slow) => {
                    // the float64 column built straight from the floats is the column the
                    // general whole-column path builds
                    if let Some(column) = fast.float64(&c, &batch) {
                        floats += 1;
                        let d = Derive {
                            column: "t".into(),
                            expr: compile(text, "t").unwrap(),
                            ty: FerryType::Float64,
                        };
                        let want = d
                            .direct(got.as_ref().expect("planned"))
                            .unwrap_or_else(|| panic!("{text}: float64 where direct declines"));
                        assert_eq!(column.to_data(), want.to_data(), "{text}: float64");
                    }
                    let got = got.unwrap_or_else(|| panic!("{text}: whole column declined"));
                    let slow: Vec<String> = slow
                        .into_iter()
                        .map(|v| format!("{:?}", v.unwrap_or(Value::Empty)))
                        .collect();
                    let got: Vec<String> = got.into_iter().map(|v| format!("{v:?}")).collect();
                    assert_eq!(got, slow, "{text}");
                    if matches!(c.node.children().first().map(Node::operator), Some(op) if !matches!(op, Operator::Add | Operator::Sub | Operator::Mul | Operator::Div | Operator::Neg | Operator::Mod))
                    {
                        let keep = fast.keep(&c, &batch).unwrap();
                        let want: Vec<bool> = slow.iter().map(|v| v == "Boolean(true)").collect();
                        assert_eq!(keep, want, "{text}: filter");
                    }
                }
            }
        }
        assert_eq!(planned, exprs.len());
        assert_eq!(
            floats, 3,
            "d * 2, a * 1.5 and b / 2.0 (NaN and infinity decline)"
        );
        // functions, string concatenation, dates: the per-row path
        for text in [
            "str::to_lowercase(s) == \"p\"",
            "s + \"x\" == \"px\"",
            "min(a, b) > 0",
            "a + ()",
        ] {
            let c = compile(text, "t").unwrap();
            assert!(Fast::plan(&c, batch.schema_ref()).is_none(), "{text}");
        }
    }
}
