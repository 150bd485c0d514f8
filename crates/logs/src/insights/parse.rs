//! The parser: commands, expressions, and the plan the run follows.

use std::collections::BTreeSet;

use regex::Regex;

use super::lex::{lex, Tok, Token};
use super::value::Value;
use super::{QueryError, MAX_ROWS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub(crate) enum Pat {
    Re(Regex),
    /// `like "text"`: the value contains the text.
    Sub(Box<Expr>),
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Field(String),
    Lit(Value),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Like {
        expr: Box<Expr>,
        pat: Pat,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// A function, by lower-case name.
    Call(&'static str, Vec<Expr>),
    /// The result of the stats command's aggregate number `n`.
    Agg(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AggKind {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Earliest,
    Latest,
    Pct(f64),
    Stddev,
}

#[derive(Debug, Clone)]
pub(crate) struct AggSpec {
    pub kind: AggKind,
    /// `None` for `count(*)` / `count()`.
    pub arg: Option<Expr>,
}

#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub items: Vec<(String, Expr)>,
    pub by: Vec<(String, Expr)>,
    pub aggs: Vec<AggSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct ParseCmd {
    pub field: String,
    pub regex: Regex,
    /// Field names for capture groups 1, 2, …
    pub names: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Fields(Vec<(String, Expr)>),
    Display(Vec<String>),
    Filter(Expr),
    Stats(Stats),
    Sort(Vec<(Expr, bool)>),
    Limit(usize),
    Parse(ParseCmd),
    Dedup(Vec<String>),
}

impl Command {
    /// Row-by-row commands that keep every row (they may follow a `sort`
    /// before its `limit` without breaking the top-N heap).
    fn one_to_one(&self) -> bool {
        matches!(
            self,
            Command::Fields(_) | Command::Display(_) | Command::Parse(_)
        )
    }

    fn streams(&self) -> bool {
        self.one_to_one() || matches!(self, Command::Filter(_))
    }
}

/// How a run consumes events after the streaming prefix.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// Aggregate with the stats command at this index.
    Stats(usize),
    /// Keep the first `n` rows in the order of the sort command at this
    /// index (or the default order).
    Top { sort: Option<usize>, n: usize },
    /// Keep every row.
    All,
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Commands applied to each event as it arrives.
    pub prefix: usize,
    pub sink: Sink,
    /// Indices of the commands applied in memory after the sink.
    pub rest: Vec<usize>,
}

/// A compiled query; [`Query::run`] evaluates it.
#[derive(Debug, Clone)]
pub struct Query {
    pub(crate) commands: Vec<Command>,
    pub(crate) plan: Plan,
    /// The result's fields, in order.
    pub(crate) columns: Vec<String>,
    /// Whether JSON messages must be flattened into fields.
    pub(crate) needs_json: bool,
}

impl Query {
    /// The names of the fields each result row reports, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

pub(crate) const SYSTEM_FIELDS: &[&str] = &[
    "@timestamp",
    "@message",
    "@logStream",
    "@log",
    "@ingestionTime",
    "@ptr",
];

/// Scalar functions: name, fewest and most arguments.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("strlen", 1, 1),
    ("toupper", 1, 1),
    ("tolower", 1, 1),
    ("trim", 1, 1),
    ("ltrim", 1, 1),
    ("rtrim", 1, 1),
    ("concat", 1, 255),
    ("substr", 2, 3),
    ("replace", 3, 3),
    ("strcontains", 2, 2),
    ("abs", 1, 1),
    ("ceil", 1, 1),
    ("floor", 1, 1),
    ("round", 1, 2),
    ("sqrt", 1, 1),
    ("pow", 2, 2),
    ("log", 1, 1),
    ("greatest", 1, 255),
    ("least", 1, 255),
    ("datefloor", 2, 2),
    ("dateceil", 2, 2),
    ("bin", 1, 1),
    ("frommillis", 1, 1),
    ("tomillis", 1, 1),
    ("ispresent", 1, 1),
    ("isempty", 1, 1),
    ("isblank", 1, 1),
    ("coalesce", 1, 255),
];

const AGGREGATES: &[&str] = &[
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "earliest",
    "latest",
    "pct",
    "stddev",
    "median",
];

/// AWS's limit on a query's length.
const MAX_QUERY_CHARS: usize = 10_000;

/// How deeply expressions may nest.
const MAX_DEPTH: usize = 100;

const COMMANDS: &str = "fields, display, filter, stats, sort, limit, parse, dedup";

/// Compiles a query.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let len = text.chars().count();
    if len > MAX_QUERY_CHARS {
        return Err(QueryError {
            message: format!("the query is longer than {MAX_QUERY_CHARS} characters"),
            start: MAX_QUERY_CHARS,
            end: len,
        });
    }
    let tokens = lex(text)?;
    let mut p = Parser {
        text,
        tokens,
        i: 0,
        aggs: None,
        in_agg: false,
        depth: 0,
        fields: BTreeSet::new(),
    };
    let mut commands = Vec::new();
    if p.peek().tok == Tok::Eof {
        return Err(p.err_here("the query is empty"));
    }
    loop {
        commands.push(p.command()?);
        match p.peek().tok {
            Tok::Eof => break,
            Tok::Pipe => {
                p.i += 1;
            }
            _ => {
                return Err(p.err_here(format!(
                    "unexpected symbol found {}; expecting | or the end of the query",
                    p.describe()
                )))
            }
        }
    }
    let needs_json = p
        .fields
        .iter()
        .any(|f| !SYSTEM_FIELDS.contains(&f.as_str()));
    let plan = plan(&commands);
    let columns = columns(&commands);
    Ok(Query {
        commands,
        plan,
        columns,
        needs_json,
    })
}

fn plan(commands: &[Command]) -> Plan {
    let b = commands
        .iter()
        .position(|c| !c.streams())
        .unwrap_or(commands.len());
    let all = |from: usize| Plan {
        prefix: b,
        sink: Sink::All,
        rest: (from..commands.len()).collect(),
    };
    match commands.get(b) {
        None => Plan {
            prefix: b,
            sink: Sink::Top {
                sort: None,
                n: MAX_ROWS,
            },
            rest: Vec::new(),
        },
        Some(Command::Stats(_)) => Plan {
            prefix: b,
            sink: Sink::Stats(b),
            rest: (b + 1..commands.len()).collect(),
        },
        Some(Command::Limit(n)) => Plan {
            prefix: b,
            sink: Sink::Top { sort: None, n: *n },
            rest: (b + 1..commands.len()).collect(),
        },
        Some(Command::Sort(_)) => {
            let j = (b + 1..commands.len())
                .find(|&j| !commands[j].one_to_one())
                .unwrap_or(commands.len());
            match commands.get(j) {
                None => Plan {
                    prefix: b,
                    sink: Sink::Top {
                        sort: Some(b),
                        n: MAX_ROWS,
                    },
                    rest: (b + 1..commands.len()).collect(),
                },
                Some(Command::Limit(n)) => Plan {
                    prefix: b,
                    sink: Sink::Top {
                        sort: Some(b),
                        n: *n,
                    },
                    rest: (b + 1..commands.len()).filter(|&k| k != j).collect(),
                },
                Some(_) => all(b),
            }
        }
        Some(_) => all(b),
    }
}

fn columns(commands: &[Command]) -> Vec<String> {
    let mut cols: Option<Vec<String>> = None;
    let mut aggregated = false;
    for c in commands {
        match c {
            Command::Fields(items) => {
                let cols = cols.get_or_insert_with(Vec::new);
                for (name, _) in items {
                    if !cols.contains(name) {
                        cols.push(name.clone());
                    }
                }
            }
            Command::Display(names) => {
                let mut v: Vec<String> = Vec::new();
                for n in names {
                    if !v.contains(n) {
                        v.push(n.clone());
                    }
                }
                cols = Some(v);
            }
            Command::Stats(s) => {
                aggregated = true;
                let mut v: Vec<String> = Vec::new();
                for (n, _) in s.by.iter().chain(&s.items) {
                    if !v.contains(n) {
                        v.push(n.clone());
                    }
                }
                cols = Some(v);
            }
            _ => {}
        }
    }
    let mut cols = cols.unwrap_or_else(|| vec!["@timestamp".into(), "@message".into()]);
    if !aggregated && !cols.iter().any(|c| c == "@ptr") {
        cols.push("@ptr".into());
    }
    cols
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    i: usize,
    /// The aggregates of the stats command being parsed.
    aggs: Option<Vec<AggSpec>>,
    /// Inside an aggregate's arguments.
    in_agg: bool,
    /// Nesting of the expression being parsed.
    depth: usize,
    /// Every field the query names.
    fields: BTreeSet<String>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.i]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.i].clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.tokens[self.i - 1].end
        }
    }

    fn err(&self, message: impl Into<String>, start: usize, end: usize) -> QueryError {
        QueryError::at(self.text, message, start, end)
    }

    fn err_here(&self, message: impl Into<String>) -> QueryError {
        let t = self.peek();
        self.err(message, t.start, t.end)
    }

    fn describe(&self) -> String {
        let t = self.peek();
        if t.tok == Tok::Eof {
            "<EOF>".into()
        } else {
            format!("'{}'", &self.text[t.start..t.end])
        }
    }

    fn unexpected(&self, expecting: &str) -> QueryError {
        self.err_here(format!(
            "unexpected symbol found {}; expecting {expecting}",
            self.describe()
        ))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), QueryError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// A field name (bare or backquoted).
    fn field_name(&mut self) -> Result<String, QueryError> {
        match &self.peek().tok {
            Tok::Ident { name, quoted } if *quoted || !is_keyword(name) => {
                let name = name.clone();
                self.i += 1;
                self.fields.insert(name.clone());
                Ok(name)
            }
            _ => Err(self.unexpected("a field name")),
        }
    }

    /// The column name of an expression without `as`: a field's name, or
    /// the expression's text as written.
    fn default_name(&self, e: &Expr, start: usize) -> String {
        match e {
            Expr::Field(name) => name.clone(),
            _ => self.text[start..self.prev_end()].to_string(),
        }
    }

    fn alias(&mut self) -> Result<Option<String>, QueryError> {
        if self.eat_kw("as") {
            Ok(Some(self.field_name()?))
        } else {
            Ok(None)
        }
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        let t = self.next();
        let Tok::Ident {
            name,
            quoted: false,
        } = &t.tok
        else {
            self.i -= usize::from(t.tok != Tok::Eof);
            return Err(self.unexpected(&format!("a command ({COMMANDS})")));
        };
        match name.to_ascii_lowercase().as_str() {
            "fields" => {
                let mut items = Vec::new();
                loop {
                    let start = self.peek().start;
                    let e = self.expr()?;
                    let text = self.default_name(&e, start);
                    let name = self.alias()?.unwrap_or(text);
                    items.push((name, e));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                Ok(Command::Fields(items))
            }
            "display" => Ok(Command::Display(self.name_list()?)),
            "dedup" => Ok(Command::Dedup(self.name_list()?)),
            "filter" => Ok(Command::Filter(self.expr()?)),
            "stats" => self.stats(),
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let e = self.expr()?;
                    let desc = if self.eat_kw("desc") {
                        true
                    } else {
                        self.eat_kw("asc");
                        false
                    };
                    keys.push((e, desc));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                Ok(Command::Sort(keys))
            }
            "limit" => {
                let t = self.next();
                match t.tok {
                    Tok::Num(n) if n.fract() == 0.0 && n >= 1.0 && n <= MAX_ROWS as f64 => {
                        Ok(Command::Limit(n as usize))
                    }
                    Tok::Num(_) => Err(self.err(
                        format!("limit must be an integer from 1 to {MAX_ROWS}"),
                        t.start,
                        t.end,
                    )),
                    _ => {
                        self.i -= usize::from(t.tok != Tok::Eof);
                        Err(self.unexpected("a number"))
                    }
                }
            }
            "parse" => self.parse_cmd(),
            "unmask" | "pattern" | "diff" | "anomaly" | "unnest" | "lookup" | "source"
            | "filterindex" => Err(self.err(
                format!("the {name} command is not supported"),
                t.start,
                t.end,
            )),
            _ => Err(self.err(
                format!(
                    "unexpected symbol found '{}'; expecting a command ({COMMANDS})",
                    &self.text[t.start..t.end]
                ),
                t.start,
                t.end,
            )),
        }
    }

    fn name_list(&mut self) -> Result<Vec<String>, QueryError> {
        let mut names = vec![self.field_name()?];
        while self.eat(&Tok::Comma) {
            names.push(self.field_name()?);
        }
        Ok(names)
    }

    fn stats(&mut self) -> Result<Command, QueryError> {
        let mut items = Vec::new();
        self.aggs = Some(Vec::new());
        loop {
            let start = self.peek().start;
            let before = self.aggs.as_ref().map_or(0, Vec::len);
            let e = self.expr()?;
            let end = self.prev_end();
            if self.aggs.as_ref().map_or(0, Vec::len) == before {
                self.aggs = None;
                return Err(self.err(
                    "a stats expression must use an aggregate function (count, sum, avg, min, max, …)",
                    start,
                    end,
                ));
            }
            let name = self
                .alias()?
                .unwrap_or_else(|| self.text[start..end].to_string());
            items.push((name, e));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let aggs = self.aggs.take().unwrap_or_default();
        let mut by = Vec::new();
        if self.eat_kw("by") {
            loop {
                let start = self.peek().start;
                let e = self.expr()?;
                let text = self.default_name(&e, start);
                let name = self.alias()?.unwrap_or(text);
                by.push((name, e));
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        Ok(Command::Stats(Stats { items, by, aggs }))
    }

    fn parse_cmd(&mut self) -> Result<Command, QueryError> {
        let field = match self.peek().tok {
            Tok::Str(_) | Tok::Regex(_) => {
                self.fields.insert("@message".into());
                "@message".to_string()
            }
            _ => self.field_name()?,
        };
        let t = self.next();
        let (regex, captures, glob) = match &t.tok {
            Tok::Str(glob) => {
                let mut re = String::from("(?s)");
                let parts: Vec<&str> = glob.split('*').collect();
                for (k, part) in parts.iter().enumerate() {
                    re.push_str(&regex::escape(part));
                    if k + 1 < parts.len() {
                        re.push_str(if k + 2 == parts.len() && parts[k + 1].is_empty() {
                            "(.*)"
                        } else {
                            "(.*?)"
                        });
                    }
                }
                let regex = Regex::new(&re)
                    .map_err(|e| self.err(format!("invalid pattern: {e}"), t.start, t.end))?;
                (regex, parts.len() - 1, true)
            }
            Tok::Regex(re) => {
                let regex = Regex::new(re).map_err(|e| {
                    self.err(format!("invalid regular expression: {e}"), t.start, t.end)
                })?;
                let n = regex.captures_len() - 1;
                (regex, n, false)
            }
            _ => {
                self.i -= usize::from(t.tok != Tok::Eof);
                return Err(self.unexpected("a pattern string or a /regular expression/"));
            }
        };
        let names = if self.peek().is_kw("as") {
            let as_tok = self.next();
            let names = self.name_list()?;
            if names.len() != captures {
                return Err(self.err(
                    format!(
                        "the pattern has {captures} capture{} but {} field name{} follow as",
                        if captures == 1 { "" } else { "s" },
                        names.len(),
                        if names.len() == 1 { "" } else { "s" }
                    ),
                    as_tok.start,
                    self.prev_end(),
                ));
            }
            names
        } else if glob {
            return Err(self.err(
                "a parse pattern with * needs `as` and a field name for each *",
                t.start,
                t.end,
            ));
        } else {
            let names: Vec<String> = regex
                .capture_names()
                .skip(1)
                .map(|n| n.unwrap_or_default().to_string())
                .collect();
            if names.iter().all(String::is_empty) {
                return Err(self.err(
                    "the regular expression has no named capture group (?<name>...)",
                    t.start,
                    t.end,
                ));
            }
            names
        };
        if captures == 0 {
            return Err(self.err("the pattern captures nothing", t.start, t.end));
        }
        for n in &names {
            self.fields.insert(n.clone());
        }
        Ok(Command::Parse(ParseCmd {
            field,
            regex,
            names,
        }))
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.depth += 1;
        let e = if self.depth > MAX_DEPTH {
            Err(self.err_here("the expression nests too deeply"))
        } else {
            self.or_expr()
        };
        self.depth -= 1;
        e
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.and_expr()?;
        while self.eat_kw("or") {
            let r = self.and_expr()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.not_expr()?;
        while self.eat_kw("and") {
            let r = self.not_expr()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn not_expr(&mut self) -> Result<Expr, QueryError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.expr_at(Self::not_expr)?)));
        }
        self.cmp_expr()
    }

    fn cmp_expr(&mut self) -> Result<Expr, QueryError> {
        let e = self.add_expr()?;
        let op = match self.peek().tok {
            Tok::Op("=") => Some(BinOp::Eq),
            Tok::Op("!=") => Some(BinOp::Ne),
            Tok::Op("<") => Some(BinOp::Lt),
            Tok::Op("<=") => Some(BinOp::Le),
            Tok::Op(">") => Some(BinOp::Gt),
            Tok::Op(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.i += 1;
            let r = self.add_expr()?;
            return Ok(Expr::Bin(op, Box::new(e), Box::new(r)));
        }
        if self.eat(&Tok::Op("=~")) {
            let pat = self.pattern(true)?;
            return Ok(Expr::Like {
                expr: Box::new(e),
                pat,
                negated: false,
            });
        }
        let negated = if self.peek().is_kw("not")
            && (self.tokens[self.i + 1].is_kw("like") || self.tokens[self.i + 1].is_kw("in"))
        {
            self.i += 1;
            true
        } else {
            false
        };
        if self.eat_kw("like") {
            let pat = self.pattern(false)?;
            return Ok(Expr::Like {
                expr: Box::new(e),
                pat,
                negated,
            });
        }
        if self.eat_kw("in") {
            self.expect(&Tok::LBrack, "[")?;
            let mut list = Vec::new();
            if !self.eat(&Tok::RBrack) {
                loop {
                    list.push(self.add_expr()?);
                    if self.eat(&Tok::RBrack) {
                        break;
                    }
                    self.expect(&Tok::Comma, ", or ]")?;
                }
            }
            return Ok(Expr::In {
                expr: Box::new(e),
                list,
                negated,
            });
        }
        Ok(e)
    }

    /// The right side of `like` or `=~` (`regex_string`: a string is a
    /// regular expression rather than a substring).
    fn pattern(&mut self, regex_string: bool) -> Result<Pat, QueryError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Regex(re) => {
                self.i += 1;
                Ok(Pat::Re(Regex::new(re).map_err(|e| {
                    self.err(format!("invalid regular expression: {e}"), t.start, t.end)
                })?))
            }
            Tok::Str(s) if regex_string => {
                self.i += 1;
                Ok(Pat::Re(Regex::new(s).map_err(|e| {
                    self.err(format!("invalid regular expression: {e}"), t.start, t.end)
                })?))
            }
            _ => Ok(Pat::Sub(Box::new(self.add_expr()?))),
        }
    }

    /// `f` one level deeper.
    fn expr_at(
        &mut self,
        f: fn(&mut Self) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        self.depth += 1;
        let e = if self.depth > MAX_DEPTH {
            Err(self.err_here("the expression nests too deeply"))
        } else {
            f(self)
        };
        self.depth -= 1;
        e
    }

    fn add_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.mul_expr()?;
        loop {
            let op = match self.peek().tok {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(e),
            };
            self.i += 1;
            let r = self.mul_expr()?;
            e = Expr::Bin(op, Box::new(e), Box::new(r));
        }
    }

    fn mul_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("%") => BinOp::Rem,
                _ => return Ok(e),
            };
            self.i += 1;
            let r = self.unary()?;
            e = Expr::Bin(op, Box::new(e), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat(&Tok::Op("-")) {
            return Ok(Expr::Neg(Box::new(self.expr_at(Self::unary)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Num(n) => {
                self.i += 1;
                Ok(Expr::Lit(Value::Num(*n)))
            }
            Tok::Dur(ms) => {
                self.i += 1;
                Ok(Expr::Lit(Value::Num(*ms as f64)))
            }
            Tok::Str(s) => {
                self.i += 1;
                Ok(Expr::Lit(Value::Str(s.clone())))
            }
            Tok::Regex(_) => Err(self.err(
                "a regular expression is only allowed after like, =~ or in parse",
                t.start,
                t.end,
            )),
            Tok::LParen => {
                self.i += 1;
                let e = self.expr()?;
                self.expect(&Tok::RParen, ")")?;
                Ok(e)
            }
            Tok::Ident { name, quoted } => {
                if !quoted && self.tokens[self.i + 1].tok == Tok::LParen {
                    return self.call(&t, name);
                }
                if !quoted && is_keyword(name) {
                    return Err(self.unexpected("an expression"));
                }
                self.i += 1;
                self.fields.insert(name.clone());
                Ok(Expr::Field(name.clone()))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn call(&mut self, t: &Token, name: &str) -> Result<Expr, QueryError> {
        let lower = name.to_ascii_lowercase();
        self.i += 2; // name (
        if let Some(&agg) = AGGREGATES.iter().find(|a| **a == lower) {
            return self.aggregate(t, agg);
        }
        let Some(&(fname, min, max)) = FUNCTIONS.iter().find(|f| f.0 == lower) else {
            return Err(self.err(
                format!("unrecognized function name: {name}"),
                t.start,
                t.end,
            ));
        };
        let args = if self.eat(&Tok::RParen) {
            Vec::new()
        } else {
            self.call_args()?
        };
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == 255 {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(
                format!(
                    "function {name} takes {want} argument{}, got {}",
                    if max == 1 { "" } else { "s" },
                    args.len()
                ),
                t.start,
                self.prev_end(),
            ));
        }
        if fname == "bin" {
            // bin(period) floors @timestamp.
            self.fields.insert("@timestamp".into());
        }
        Ok(Expr::Call(fname, args))
    }

    fn aggregate(&mut self, t: &Token, agg: &str) -> Result<Expr, QueryError> {
        let start = t.start;
        if self.aggs.is_none() {
            // Outside stats, `count(*)` names the column a stats command made.
            let mut depth = 1;
            while depth > 0 {
                match self.next().tok {
                    Tok::LParen => depth += 1,
                    Tok::RParen => depth -= 1,
                    Tok::Eof => return Err(self.unexpected(")")),
                    _ => {}
                }
            }
            return Ok(Expr::Field(self.text[start..self.prev_end()].to_string()));
        }
        if self.in_agg {
            return Err(self.err("aggregate functions cannot be nested", start, t.end));
        }
        let mut args = Vec::new();
        if agg == "count" && self.eat(&Tok::Op("*")) {
            self.expect(&Tok::RParen, ")")?;
        } else if !self.eat(&Tok::RParen) {
            self.in_agg = true;
            let parsed = self.call_args();
            self.in_agg = false;
            args = parsed?;
        }
        let bad = |p: &Self, msg: &str| p.err(msg, start, p.prev_end());
        let kind = match agg {
            "count" => AggKind::Count,
            "count_distinct" => AggKind::CountDistinct,
            "sum" => AggKind::Sum,
            "avg" => AggKind::Avg,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "earliest" => AggKind::Earliest,
            "latest" => AggKind::Latest,
            "stddev" => AggKind::Stddev,
            "median" => AggKind::Pct(50.0),
            _ => match args.get(1) {
                Some(Expr::Lit(Value::Num(p))) if args.len() == 2 && (0.0..=100.0).contains(p) => {
                    let p = *p;
                    args.pop();
                    AggKind::Pct(p)
                }
                _ => {
                    return Err(bad(
                        self,
                        "pct takes a field and a percentile from 0 to 100",
                    ))
                }
            },
        };
        let arity_ok = match kind {
            AggKind::Count => args.len() <= 1,
            _ => args.len() == 1,
        };
        if !arity_ok {
            return Err(bad(self, &format!("{agg} takes one argument")));
        }
        let aggs = self.aggs.get_or_insert_with(Vec::new);
        aggs.push(AggSpec {
            kind,
            arg: args.pop(),
        });
        Ok(Expr::Agg(aggs.len() - 1))
    }

    /// Arguments after `(`, through `)`.
    fn call_args(&mut self) -> Result<Vec<Expr>, QueryError> {
        let mut args = Vec::new();
        loop {
            args.push(self.expr()?);
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            self.expect(&Tok::Comma, ", or )")?;
        }
    }
}

fn is_keyword(name: &str) -> bool {
    ["and", "or", "not", "like", "in", "as", "by", "asc", "desc"]
        .iter()
        .any(|k| name.eq_ignore_ascii_case(k))
}
