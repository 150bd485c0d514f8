//! CloudWatch Logs filter patterns: the syntax FilterLogEvents, metric
//! filters and TestMetricFilter share (AWS's "Filter pattern syntax for
//! metric filters, subscription filters, filter log events, and Live Tail",
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html>).
//!
//! A pattern is one of four kinds, chosen by its first character:
//!
//! - empty or blank: every event matches;
//! - `{ … }`: a JSON pattern — the event must be a JSON object, and
//!   conditions on `$.selector`s joined with `&&`, `||` and parentheses;
//! - `[ … ]`: a space-delimited pattern — the event is split into fields
//!   (a `"quoted string"` or a `[bracketed string]` is one field), one
//!   named slot per field, `...` for any number of fields;
//! - `%regex%`: a regular expression found anywhere in the event;
//! - anything else: terms. Every term must appear (case-sensitively);
//!   `-term` must not; `?term` starts an alternative, so `?A ?B` matches
//!   either, and `?A B ?C D` matches "A and B" or "C and D" (the way the
//!   AWS CDK's `anyTermGroup` writes term groups).
//!
//! [`FilterPattern::parse`] does all the work that can be done once, so
//! [`FilterPattern::matches`] allocates nothing for term and regex
//! patterns (terms are `memchr` finders built at parse time) and parses
//! the event as JSON only for JSON patterns.
//!
//! **Architecture Invariant:** pure — no I/O, no clock.

use memchr::memmem::Finder;
use regex::bytes::{Regex, RegexBuilder};
use serde_json::Value;

/// Why a pattern was refused, in AWS's words (FilterLogEvents,
/// PutMetricFilter and TestMetricFilter answer these as
/// `InvalidParameterException`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterPatternError {
    /// The message AWS gives for most malformed patterns.
    #[error("Invalid filter pattern")]
    Invalid,
    /// A JSON pattern without its closing brace.
    #[error("If a filter pattern starts with '{{' it must end with '}}'")]
    UnclosedJson,
    /// An unquoted term or value with characters that must be quoted.
    #[error("Invalid character(s) in term '{0}'")]
    InvalidCharacters(String),
}

type Result<T> = std::result::Result<T, FilterPatternError>;

/// AWS's quota: "a limit of 2 regex for each filter pattern when creating
/// a delimited or JSON filter pattern".
const MAX_REGEX_PER_PATTERN: usize = 2;

/// A parsed filter pattern.
#[derive(Clone, Debug)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Everything,
    /// Alternatives; an event matches if any group does.
    Terms(Vec<TermGroup>),
    Regex(Regex),
    Json(Expr<JsonCondition>),
    Delimited(Delimited),
}

/// What a matching event yields for a metric filter: the extracted values
/// TestMetricFilter reports (space-delimited patterns only, keyed `$name`,
/// or `$N` for the N-th field without a name — empty for other patterns,
/// as AWS documents), and, for JSON patterns, the parsed event so a
/// `metricValue` such as `$.latency` can be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Match {
    extracted: Vec<(String, String)>,
    json: Option<Value>,
}

impl Match {
    /// The `(key, value)` pairs TestMetricFilter returns as
    /// `extractedValues`.
    pub fn extracted_values(&self) -> &[(String, String)] {
        &self.extracted
    }

    /// The value a metric transformation's `metricValue` names: `$.a.b[0]`
    /// in a JSON event, `$name` or `$N` of a space-delimited one. `None`
    /// when the reference names nothing in this event, or names a JSON
    /// object, array or null.
    pub fn value(&self, reference: &str) -> Option<String> {
        if reference.starts_with("$.") {
            let mut parser = Parser::new(reference);
            let selector = parser.selector().ok()?;
            if !parser.at_end() {
                return None;
            }
            return match selector.lookup(self.json.as_ref()?)? {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                Value::Bool(flag) => Some(flag.to_string()),
                _ => None,
            };
        }
        self.extracted
            .iter()
            .find(|(key, _)| key == reference)
            .map(|(_, value)| value.clone())
    }
}

impl IntoIterator for Match {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    /// The extracted values (see [`Match::extracted_values`]).
    fn into_iter(self) -> Self::IntoIter {
        self.extracted.into_iter()
    }
}

impl FilterPattern {
    /// Parses `text`; an empty or blank pattern matches every event.
    pub fn parse(text: &str) -> Result<FilterPattern> {
        let text = text.trim();
        let kind = if text.is_empty() {
            Kind::Everything
        } else if text.starts_with('{') {
            if !text.ends_with('}') || text.len() < 2 {
                return Err(FilterPatternError::UnclosedJson);
            }
            let mut parser = Parser::new(&text[1..text.len() - 1]);
            let expr = parser.expression(&mut Parser::json_condition)?;
            parser.finish()?;
            Kind::Json(expr)
        } else if text.starts_with('[') {
            if !text.ends_with(']') || text.len() < 2 {
                return Err(FilterPatternError::Invalid);
            }
            Kind::Delimited(Delimited::parse(&text[1..text.len() - 1])?)
        } else if let Some(inner) = text.strip_prefix('%') {
            match inner.strip_suffix('%') {
                Some(inner) if !inner.is_empty() && !inner.contains('%') => {
                    Kind::Regex(compile_regex(inner)?)
                }
                _ => return Err(FilterPatternError::Invalid),
            }
        } else {
            let groups = parse_terms(text)?;
            if groups.iter().any(TermGroup::is_everything) {
                Kind::Everything
            } else {
                Kind::Terms(groups)
            }
        };
        Ok(FilterPattern { kind })
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.kind {
            Kind::Everything => true,
            Kind::Terms(groups) => groups.iter().any(|group| group.matches(message)),
            Kind::Regex(regex) => regex.is_match(message.as_bytes()),
            Kind::Json(expr) => {
                parse_json_event(message).is_some_and(|root| json_matches(expr, &root))
            }
            Kind::Delimited(delimited) => {
                let fields = split_fields(message);
                delimited.bind(&fields).is_some()
            }
        }
    }

    /// What a metric filter extracts from `message`, or `None` if it does
    /// not match.
    pub fn extract(&self, message: &str) -> Option<Match> {
        match &self.kind {
            Kind::Everything | Kind::Terms(_) | Kind::Regex(_) => {
                self.matches(message).then(Match::default)
            }
            Kind::Json(expr) => {
                let root = parse_json_event(message)?;
                json_matches(expr, &root).then(|| Match {
                    extracted: Vec::new(),
                    json: Some(root),
                })
            }
            Kind::Delimited(delimited) => {
                let fields = split_fields(message);
                let slot_of_field = delimited.bind(&fields)?;
                let extracted = fields
                    .iter()
                    .zip(slot_of_field)
                    .enumerate()
                    .map(|(index, (field, slot))| {
                        let key = match slot.and_then(|slot| delimited.slots[slot].name.as_deref())
                        {
                            Some(name) => format!("${name}"),
                            None => format!("${}", index + 1),
                        };
                        (key, (*field).to_owned())
                    })
                    .collect();
                Some(Match {
                    extracted,
                    json: None,
                })
            }
        }
    }
}

// ---------------------------------------------------------------- terms

/// Terms that must all appear, and terms that must not.
#[derive(Clone, Debug, Default)]
struct TermGroup {
    required: Vec<Finder<'static>>,
    excluded: Vec<Finder<'static>>,
    /// Terms seen, including blank quoted ones (`" "`), which AWS documents
    /// as matching everything and so add no finder.
    terms: usize,
}

impl TermGroup {
    fn matches(&self, message: &str) -> bool {
        let haystack = message.as_bytes();
        self.required
            .iter()
            .all(|finder| finder.find(haystack).is_some())
            && self
                .excluded
                .iter()
                .all(|finder| finder.find(haystack).is_none())
    }

    fn is_everything(&self) -> bool {
        self.required.is_empty() && self.excluded.is_empty()
    }
}

fn parse_terms(text: &str) -> Result<Vec<TermGroup>> {
    let bytes = text.as_bytes();
    let mut groups = vec![TermGroup::default()];
    let mut seen_optional = false;
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos == bytes.len() {
            break;
        }
        let optional = bytes[pos] == b'?';
        if optional {
            pos += 1;
        }
        let excluded = pos < bytes.len() && bytes[pos] == b'-';
        if excluded {
            pos += 1;
            // AWS's own example writes `"ERROR" - "Exiting"`.
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
        }
        if pos == bytes.len() {
            return Err(FilterPatternError::Invalid);
        }
        let term = if bytes[pos] == b'"' {
            let (term, end) = quoted(text, pos)?;
            if end < bytes.len() && !bytes[end].is_ascii_whitespace() {
                return Err(FilterPatternError::Invalid);
            }
            pos = end;
            term
        } else {
            let start = pos;
            while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let term = &text[start..pos];
            if !term.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(FilterPatternError::InvalidCharacters(term.to_owned()));
            }
            term.to_owned()
        };
        if optional {
            if seen_optional || groups.last().is_some_and(|group| group.terms > 0) {
                groups.push(TermGroup::default());
            }
            seen_optional = true;
        }
        let group = groups.last_mut().expect("at least one group");
        group.terms += 1;
        if term.trim().is_empty() {
            if excluded {
                return Err(FilterPatternError::Invalid);
            }
            continue;
        }
        let finder = Finder::new(term.as_bytes()).into_owned();
        if excluded {
            group.excluded.push(finder);
        } else {
            group.required.push(finder);
        }
    }
    Ok(groups)
}

/// The string quoted at `text[start] == '"'` (`\"` and `\\` escape) and the
/// position after its closing quote.
fn quoted(text: &str, start: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + offset + 1)),
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(FilterPatternError::Invalid)
}

// ---------------------------------------------------------------- regex

/// Compiles a `%…%` body, refusing what AWS documents it refuses:
/// `(` and `)` ("You cannot use parentheses to define a subpattern"),
/// `!` (its own example of an unsupported symbol) and multi-byte
/// characters. Classes such as `\d` and `\w` are ASCII, as the event is
/// matched byte by byte.
fn compile_regex(body: &str) -> Result<Regex> {
    let mut escaped = false;
    for c in body.chars() {
        if !c.is_ascii() || c == '!' || (!escaped && (c == '(' || c == ')')) {
            return Err(FilterPatternError::Invalid);
        }
        escaped = !escaped && c == '\\';
    }
    RegexBuilder::new(body)
        .unicode(false)
        .build()
        .map_err(|_| FilterPatternError::Invalid)
}

// ---------------------------------------------------------------- expressions

/// `&&` binds tighter than `||`; parentheses group.
#[derive(Clone, Debug)]
enum Expr<C> {
    Condition(C),
    And(Vec<Expr<C>>),
    Or(Vec<Expr<C>>),
}

impl<C> Expr<C> {
    fn eval(&self, test: &mut impl FnMut(&C) -> bool) -> bool {
        match self {
            Expr::Condition(condition) => test(condition),
            Expr::And(all) => all.iter().all(|expr| expr.eval(test)),
            Expr::Or(any) => any.iter().any(|expr| expr.eval(test)),
        }
    }

    fn conditions<'a>(&'a self, out: &mut Vec<&'a C>) {
        match self {
            Expr::Condition(condition) => out.push(condition),
            Expr::And(all) | Expr::Or(all) => all.iter().for_each(|expr| expr.conditions(out)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn is_ordering(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }

    fn compare(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Debug)]
enum Operand {
    /// A string, quoted or not; `*` at its start or end is a wildcard
    /// ("Ev*ent will only match the actual string Ev*ent"). `number` is set
    /// when it is an unquoted number.
    Text {
        text: Wildcard,
        number: Option<f64>,
    },
    Regex(Regex),
}

#[derive(Clone, Debug)]
enum Wildcard {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl Wildcard {
    fn new(text: &str) -> Wildcard {
        if text == "*" {
            return Wildcard::Any;
        }
        match (text.strip_prefix('*'), text.strip_suffix('*')) {
            (Some(rest), Some(_)) => Wildcard::Contains(rest[..rest.len() - 1].to_owned()),
            (Some(rest), None) => Wildcard::Suffix(rest.to_owned()),
            (None, Some(rest)) => Wildcard::Prefix(rest.to_owned()),
            (None, None) => Wildcard::Exact(text.to_owned()),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Wildcard::Any => true,
            Wildcard::Exact(text) => value == text,
            Wildcard::Prefix(text) => value.starts_with(text.as_str()),
            Wildcard::Suffix(text) => value.ends_with(text.as_str()),
            Wildcard::Contains(text) => value.contains(text.as_str()),
        }
    }
}

impl Operand {
    /// Compares a string value (a JSON string, the text of a JSON number
    /// or boolean, or a space-delimited field). `number` is the value as a
    /// number, when it is one.
    fn compare(&self, op: Op, value: &str, number: Option<f64>) -> bool {
        match self {
            Operand::Text {
                number: Some(wanted),
                ..
            } if number.is_some() || op.is_ordering() => {
                number.is_some_and(|number| op.compare(number, *wanted))
            }
            Operand::Text { text, .. } => match op {
                Op::Eq => text.matches(value),
                Op::Ne => !text.matches(value),
                _ => false,
            },
            Operand::Regex(regex) => match op {
                Op::Eq => regex.is_match(value.as_bytes()),
                Op::Ne => !regex.is_match(value.as_bytes()),
                _ => false,
            },
        }
    }
}

/// `[+-]?` digits with an optional fraction and exponent — AWS's NUMBER.
fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut pos = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut digits = pos - digits_start;
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let fraction_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        digits += pos - fraction_start;
    }
    if digits == 0 {
        return None;
    }
    if pos < bytes.len() && matches!(bytes[pos], b'e' | b'E') {
        pos += 1;
        if pos < bytes.len() && matches!(bytes[pos], b'+' | b'-') {
            pos += 1;
        }
        let exponent_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == exponent_start {
            return None;
        }
    }
    if pos != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|number| number.is_finite())
}

/// Characters an unquoted value may hold: AWS says strings of
/// alphanumerics need no quotes and ones with "unicode and other
/// characters such as '@', '$', '\'" must be quoted; its own examples
/// leave `123.123.*`, `kms.amazonaws.com` and `-1` unquoted.
fn is_unquoted_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'*' | b':' | b'/')
}

/// A recursive-descent parser over a JSON pattern's body or one
/// space-delimited slot.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    regexes: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            regexes: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn finish(&mut self) -> Result<()> {
        self.skip_whitespace();
        if !self.at_end() || self.regexes > MAX_REGEX_PER_PATTERN {
            return Err(FilterPatternError::Invalid);
        }
        Ok(())
    }

    /// Consumes `token` after any whitespace.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_whitespace();
        if self.text[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Consumes the keyword `word` (any case) after any whitespace.
    fn eat_keyword(&mut self, word: &str) -> bool {
        self.skip_whitespace();
        let rest = &self.bytes()[self.pos..];
        if rest.len() >= word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
            && !rest
                .get(word.len())
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn expression<C>(
        &mut self,
        condition: &mut impl FnMut(&mut Self) -> Result<C>,
    ) -> Result<Expr<C>> {
        let mut any = vec![self.conjunction(condition)?];
        while self.eat("||") {
            any.push(self.conjunction(condition)?);
        }
        Ok(if any.len() == 1 {
            any.pop().expect("one")
        } else {
            Expr::Or(any)
        })
    }

    fn conjunction<C>(
        &mut self,
        condition: &mut impl FnMut(&mut Self) -> Result<C>,
    ) -> Result<Expr<C>> {
        let mut all = vec![self.primary(condition)?];
        while self.eat("&&") {
            all.push(self.primary(condition)?);
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one")
        } else {
            Expr::And(all)
        })
    }

    fn primary<C>(
        &mut self,
        condition: &mut impl FnMut(&mut Self) -> Result<C>,
    ) -> Result<Expr<C>> {
        if self.eat("(") {
            let inner = self.expression(condition)?;
            if !self.eat(")") {
                return Err(FilterPatternError::Invalid);
            }
            return Ok(inner);
        }
        self.skip_whitespace();
        Ok(Expr::Condition(condition(self)?))
    }

    /// `!=`, `<=`, `>=`, `=`, `<` or `>` (not `==`).
    fn operator(&mut self) -> Result<Op> {
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return Err(FilterPatternError::Invalid);
        };
        if self
            .peek()
            .is_some_and(|b| matches!(b, b'=' | b'<' | b'>' | b'!'))
        {
            return Err(FilterPatternError::Invalid);
        }
        Ok(op)
    }

    /// A quoted string, a `%regex%` or an unquoted value.
    fn operand(&mut self, op: Op) -> Result<Operand> {
        self.skip_whitespace();
        let operand = match self.peek() {
            Some(b'"') => {
                let (text, end) = quoted(self.text, self.pos)?;
                self.pos = end;
                Operand::Text {
                    text: Wildcard::new(&text),
                    number: None,
                }
            }
            Some(b'%') => {
                let body_start = self.pos + 1;
                let body_end = self.text[body_start..]
                    .find('%')
                    .map(|offset| body_start + offset)
                    .ok_or(FilterPatternError::Invalid)?;
                if body_end == body_start {
                    return Err(FilterPatternError::Invalid);
                }
                self.pos = body_end + 1;
                self.regexes += 1;
                Operand::Regex(compile_regex(&self.text[body_start..body_end])?)
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|b| {
                    !b.is_ascii_whitespace() && !matches!(b, b')' | b'&' | b'|' | b'(')
                }) {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                if text.is_empty() {
                    return Err(FilterPatternError::Invalid);
                }
                if !text.bytes().all(is_unquoted_value_byte) {
                    return Err(FilterPatternError::InvalidCharacters(text.to_owned()));
                }
                Operand::Text {
                    text: Wildcard::new(text),
                    number: parse_number(text),
                }
            }
        };
        let numeric = matches!(
            operand,
            Operand::Text {
                number: Some(_),
                ..
            }
        );
        if op.is_ordering() && !numeric {
            return Err(FilterPatternError::Invalid);
        }
        Ok(operand)
    }

    /// `$.name`, then any of `.name` and `[index]`.
    fn selector(&mut self) -> Result<Selector> {
        if self.peek() != Some(b'$') {
            return Err(FilterPatternError::Invalid);
        }
        self.pos += 1;
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    let start = self.pos;
                    while self
                        .peek()
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return Err(FilterPatternError::Invalid);
                    }
                    steps.push(Step::Key(self.text[start..self.pos].to_owned()));
                }
                // "Array elements … must follow a property".
                Some(b'[') if !steps.is_empty() => {
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    let index = self.text[start..self.pos]
                        .parse::<usize>()
                        .map_err(|_| FilterPatternError::Invalid)?;
                    if self.peek() != Some(b']') {
                        return Err(FilterPatternError::Invalid);
                    }
                    self.pos += 1;
                    steps.push(Step::Index(index));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Err(FilterPatternError::Invalid);
        }
        Ok(Selector { steps })
    }

    fn json_condition(&mut self) -> Result<JsonCondition> {
        let selector = self.selector()?;
        if self.eat_keyword("IS") {
            return if self.eat_keyword("NULL") {
                Ok(JsonCondition::IsNull(selector))
            } else if self.eat_keyword("TRUE") {
                Ok(JsonCondition::IsBool(selector, true))
            } else if self.eat_keyword("FALSE") {
                Ok(JsonCondition::IsBool(selector, false))
            } else {
                Err(FilterPatternError::Invalid)
            };
        }
        if self.eat_keyword("NOT") {
            return if self.eat_keyword("EXISTS") {
                Ok(JsonCondition::NotExists(selector))
            } else {
                Err(FilterPatternError::Invalid)
            };
        }
        let op = self.operator()?;
        let operand = self.operand(op)?;
        Ok(JsonCondition::Compare(selector, op, operand))
    }

    /// `name op value`, for a space-delimited slot.
    fn field_condition(&mut self) -> Result<FieldCondition> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(FilterPatternError::Invalid);
        }
        let name = self.text[start..self.pos].to_owned();
        let op = self.operator()?;
        let operand = self.operand(op)?;
        Ok(FieldCondition { name, op, operand })
    }
}

// ---------------------------------------------------------------- JSON

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
struct Selector {
    steps: Vec<Step>,
}

impl Selector {
    fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.steps.iter().try_fold(root, |value, step| match step {
            Step::Key(key) => value.as_object()?.get(key),
            Step::Index(index) => value.as_array()?.get(*index),
        })
    }
}

#[derive(Clone, Debug)]
enum JsonCondition {
    Compare(Selector, Op, Operand),
    IsNull(Selector),
    IsBool(Selector, bool),
    NotExists(Selector),
}

/// The event as a JSON object; anything else never matches a JSON pattern.
fn parse_json_event(message: &str) -> Option<Value> {
    if !message.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(message)
        .ok()
        .filter(Value::is_object)
}

fn json_matches(expr: &Expr<JsonCondition>, root: &Value) -> bool {
    expr.eval(&mut |condition| match condition {
        JsonCondition::Compare(selector, op, operand) => {
            // "The SELECTOR must point to a value node": objects, arrays,
            // null and missing members match neither `=` nor `!=`.
            match selector.lookup(root) {
                Some(Value::String(text)) => operand.compare(*op, text, None),
                Some(Value::Number(number)) => {
                    operand.compare(*op, &number.to_string(), number.as_f64())
                }
                Some(Value::Bool(flag)) => {
                    !op.is_ordering() && operand.compare(*op, &flag.to_string(), None)
                }
                _ => false,
            }
        }
        JsonCondition::IsNull(selector) => matches!(selector.lookup(root), Some(Value::Null)),
        JsonCondition::IsBool(selector, wanted) => {
            selector.lookup(root).and_then(Value::as_bool) == Some(*wanted)
        }
        JsonCondition::NotExists(selector) => selector.lookup(root).is_none(),
    })
}

// ---------------------------------------------------------------- space-delimited

#[derive(Clone, Debug)]
struct FieldCondition {
    name: String,
    op: Op,
    operand: Operand,
}

#[derive(Clone, Debug)]
struct Slot {
    name: Option<String>,
    condition: Option<Expr<FieldCondition>>,
}

#[derive(Clone, Debug)]
struct Delimited {
    slots: Vec<Slot>,
    /// Where `...` stands among the slots (it is not one of them).
    ellipsis: Option<usize>,
}

impl Delimited {
    fn parse(body: &str) -> Result<Delimited> {
        if body.trim().is_empty() {
            return Err(FilterPatternError::Invalid);
        }
        let mut slots = Vec::new();
        let mut ellipsis = None;
        let mut regexes = 0;
        for text in split_slots(body)? {
            let text = text.trim();
            if text == "..." {
                if ellipsis.is_some() {
                    return Err(FilterPatternError::Invalid);
                }
                ellipsis = Some(slots.len());
                continue;
            }
            if text.is_empty() {
                slots.push(Slot {
                    name: None,
                    condition: None,
                });
                continue;
            }
            if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                slots.push(Slot {
                    name: Some(text.to_owned()),
                    condition: None,
                });
                continue;
            }
            let mut parser = Parser::new(text);
            let condition = parser.expression(&mut Parser::field_condition)?;
            parser.finish()?;
            regexes += parser.regexes;
            // A slot's conditions are on its own field: AWS refuses
            // `status_code = 4* && bytes > 1000` in one slot.
            let mut conditions = Vec::new();
            condition.conditions(&mut conditions);
            let name = conditions[0].name.clone();
            if conditions.iter().any(|condition| condition.name != name) {
                return Err(FilterPatternError::Invalid);
            }
            slots.push(Slot {
                name: Some(name),
                condition: Some(condition),
            });
        }
        if regexes > MAX_REGEX_PER_PATTERN {
            return Err(FilterPatternError::Invalid);
        }
        Ok(Delimited { slots, ellipsis })
    }

    /// The slot each field falls in (`None` for fields the ellipsis
    /// covers), if the fields fit the slots and every condition holds.
    fn bind(&self, fields: &[&str]) -> Option<Vec<Option<usize>>> {
        let slots = self.slots.len();
        let (before, after) = match self.ellipsis {
            None if fields.len() == slots => (slots, 0),
            Some(at) if fields.len() >= slots => (at, slots - at),
            _ => return None,
        };
        let tail_start = fields.len() - after;
        let mut slot_of_field = Vec::with_capacity(fields.len());
        for (index, field) in fields.iter().enumerate() {
            let slot = if index < before {
                Some(index)
            } else if index >= tail_start {
                Some(before + (index - tail_start))
            } else {
                None
            };
            if let Some(slot) = slot {
                if !self.slots[slot].holds(field) {
                    return None;
                }
            }
            slot_of_field.push(slot);
        }
        Some(slot_of_field)
    }
}

impl Slot {
    fn holds(&self, field: &str) -> bool {
        let Some(condition) = &self.condition else {
            return true;
        };
        let number = parse_number(field);
        condition.eval(&mut |condition| condition.operand.compare(condition.op, field, number))
    }
}

/// Splits a space-delimited pattern's body at the commas outside quoted
/// strings and `%regex%`es.
fn split_slots(body: &str) -> Result<Vec<&str>> {
    let bytes = body.as_bytes();
    let mut slots = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => {
                let (_, end) = quoted(body, pos)?;
                pos = end;
                continue;
            }
            b'%' => {
                let end = body[pos + 1..]
                    .find('%')
                    .ok_or(FilterPatternError::Invalid)?;
                pos += end + 2;
                continue;
            }
            b',' => {
                slots.push(&body[start..pos]);
                start = pos + 1;
            }
            _ => {}
        }
        pos += 1;
    }
    slots.push(&body[start..]);
    Ok(slots)
}

/// Splits an event into fields at runs of whitespace; the characters
/// between a pair of double quotes or square brackets are one field
/// (without the quotes or brackets).
fn split_fields(message: &str) -> Vec<&str> {
    let bytes = message.as_bytes();
    let mut fields = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos == bytes.len() {
            return fields;
        }
        let close = match bytes[pos] {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        match close {
            Some(close) => {
                let start = pos + 1;
                let end =
                    memchr::memchr(close, &bytes[start..]).map_or(bytes.len(), |at| start + at);
                fields.push(&message[start..end]);
                pos = (end + 1).min(bytes.len());
            }
            None => {
                let start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
                    pos += 1;
                }
                fields.push(&message[start..pos]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pattern: &str, message: &str, expected: bool) {
        let parsed = FilterPattern::parse(pattern)
            .unwrap_or_else(|err| panic!("pattern {pattern:?} failed to parse: {err}"));
        assert_eq!(
            parsed.matches(message),
            expected,
            "pattern {pattern:?} on message {message:?}"
        );
        assert_eq!(
            parsed.extract(message).is_some(),
            expected,
            "extract: pattern {pattern:?} on message {message:?}"
        );
    }

    #[track_caller]
    fn check_all(pattern: &str, cases: &[(&str, bool)]) {
        for (message, expected) in cases {
            check(pattern, message, *expected);
        }
    }

    #[track_caller]
    fn check_error(pattern: &str, expected: &str) {
        match FilterPattern::parse(pattern) {
            Ok(parsed) => panic!("pattern {pattern:?} parsed: {parsed:?}"),
            Err(err) => assert_eq!(err.to_string(), expected, "pattern {pattern:?}"),
        }
    }

    #[track_caller]
    fn check_extract(pattern: &str, message: &str, expected: Option<&[(&str, &str)]>) {
        let parsed = FilterPattern::parse(pattern).expect("pattern parses");
        let got = parsed.extract(message).map(|found| {
            let mut pairs: Vec<(String, String)> = found.into_iter().collect();
            pairs.sort();
            pairs
        });
        let expected = expected.map(|pairs| {
            let mut pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            pairs.sort();
            pairs
        });
        assert_eq!(got, expected, "pattern {pattern:?} on message {message:?}");
    }

    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
    // ("Matching terms in log events", as archived in
    // https://github.com/awsdocs/amazon-cloudwatch-logs-user-guide/blob/master/doc_source/FilterAndPatternSyntax.md).
    #[test]
    fn documented_terms() {
        check_all(
            "",
            &[("anything at all", true), ("", true), ("{\"a\": 1}", true)],
        );
        check_all("   ", &[("anything", true)]);
        check_all(
            "ERROR",
            &[
                ("[ERROR] A fatal exception has occurred", true),
                ("Exiting with ERRORCODE: -1", true),
                ("[error] lower case", false),
            ],
        );
        check_all(
            "\"ERROR\" - \"Exiting\"",
            &[
                ("[ERROR] A fatal exception has occurred", true),
                ("Exiting with ERRORCODE: -1", false),
            ],
        );
        check_all(
            "ERROR Exception",
            &[
                ("[ERROR] Caught IllegalArgumentException", true),
                ("[ERROR] Unhandled Exception", true),
                ("[ERROR] Unhandled", false),
                ("Exception", false),
            ],
        );
        check_all(
            "Failed to process the request",
            &[
                ("[WARN] Failed to process the request", true),
                (
                    "[ERROR] Unable to continue: Failed to process the request",
                    true,
                ),
                ("[WARN] the request was processed", false),
            ],
        );
        // "OR pattern matching", with its three events.
        let events = ["ERROR WARN message", "ERROR message", "WARN message"];
        for (pattern, expected) in [
            ("ERROR", [true, true, false]),
            ("?ERROR ?WARN", [true, true, true]),
            ("ERROR WARN", [true, false, false]),
            ("ERROR -WARN", [false, true, false]),
        ] {
            for (event, expected) in events.iter().zip(expected) {
                check(pattern, event, expected);
            }
        }
    }

    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
    // (current page: "Using filter patterns to match terms in unstructured
    // log events").
    #[test]
    fn documented_unstructured_events() {
        let events = [
            "[ERROR 400] BAD REQUEST",
            "[ERROR 401] UNAUTHORIZED REQUEST",
            "[ERROR 419] MISSING ARGUMENTS",
            "[ERROR 420] INVALID ARGUMENTS",
            "[ERROR 500] INTERNAL SERVER ERROR",
            "[SUCCESS 200] AUTHORIZED REQUEST",
        ];
        for (pattern, expected) in [
            ("%AUTHORIZED%", [false, true, false, false, false, true]),
            ("ERROR", [true, true, true, true, true, false]),
            ("ERROR ARGUMENTS", [false, false, true, true, false, false]),
            (
                "?ARGUMENTS ?SUCCESS",
                [false, false, true, true, false, true],
            ),
            (
                "\"INTERNAL SERVER ERROR\"",
                [false, false, false, false, true, false],
            ),
            ("ERROR -ARGUMENTS", [true, true, false, false, true, false]),
            ("\" \"", [true, true, true, true, true, true]),
        ] {
            for (event, expected) in events.iter().zip(expected) {
                check(pattern, event, expected);
            }
        }
    }

    // The filterPattern examples AWS gives for Lightsail's GetContainerLog,
    // which passes them to CloudWatch Logs:
    // https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/lightsail/aws.sdk.kotlin.services.lightsail.model/-get-container-log-request/filter-pattern.html
    #[test]
    fn documented_api_reference_examples() {
        check_all("-ERROR", &[("INFO fine", true), ("ERROR bad", false)]);
        check_all(
            "?ERROR ?Exception",
            &[
                ("ERROR bad", true),
                ("an Exception", true),
                ("INFO fine", false),
            ],
        );
    }

    #[test]
    fn term_groups_and_quoting() {
        // The AWS CDK's anyTermGroup(["ERROR", "MainThread"], ["WARN",
        // "Deadlock"]) writes this.
        let pattern = "?\"ERROR\" \"MainThread\" ?\"WARN\" \"Deadlock\"";
        check_all(
            pattern,
            &[
                ("ERROR in MainThread", true),
                ("WARN Deadlock found", true),
                ("ERROR in worker", false),
                ("WARN MainThread", false),
            ],
        );
        check_all(
            "\"say \\\"hi\\\"\"",
            &[("they say \"hi\" there", true), ("they say hi", false)],
        );
        check_all("\"a-b.c\"", &[("x a-b.c y", true), ("a-b", false)]);
        check_all(
            "-\"Exiting\" ERROR",
            &[("ERROR x", true), ("Exiting ERROR", false)],
        );
        check_all(
            "\"ünïcode\"",
            &[("some ünïcode text", true), ("unicode", false)],
        );
        check_all("\"\"", &[("anything", true)]);
    }

    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
    // ("Supported regular expressions (regex) syntax" and the examples on
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/regex-expressions.html).
    #[test]
    fn documented_regex() {
        check_all(
            "%^[hc]at%",
            &[("hat trick", true), ("cat", true), ("the cat", false)],
        );
        check_all(
            "%[hc]at$%",
            &[("the hat", true), ("a cat", true), ("cat nap", false)],
        );
        check_all(
            "%colou?r%",
            &[("color", true), ("colour", true), ("colr", false)],
        );
        check_all("%[abc]%", &[("xax", true), ("xyz", false)]);
        check_all("%[a-z]%", &[("123a", true), ("123", false)]);
        check_all("%[abcx-z]%", &[("y", true), ("d", false)]);
        check_all("%a{3,5}%", &[("baaab", true), ("baab", false)]);
        check_all(
            "%gray|grey%",
            &[("grey", true), ("gray", true), ("gry", false)],
        );
        check_all(
            "%10\\.10\\.0\\.1%",
            &[("from 10.10.0.1:80", true), ("from 10x10x0x1", false)],
        );
        check_all("%a*b%", &[("b", true), ("aab", true), ("c", false)]);
        check_all("%a+b%", &[("aab", true), ("b", false)]);
        check_all("%.at%", &[("#at", true), ("at", false)]);
        check_all("%\\d%", &[("a1", true), ("a", false)]);
        check_all("%\\s%", &[("a b", true), ("ab", false)]);
        check_all("%\\w%", &[("_", true), ("-", false)]);
        check_all(
            "%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%",
            &[("client 192.168.0.1 connected", true), ("client x", false)],
        );
        check_all(
            "%[Ee]rror|[Ff]ail%",
            &[
                ("Error here", true),
                ("error here", true),
                ("it will fail", true),
                ("all good", false),
            ],
        );
    }

    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
    // ("Matching terms in JSON log events", "JSON Metric Filter Examples";
    // also https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html).
    #[test]
    fn documented_json_examples() {
        let event = r#"{
          "eventType": "UpdateTrail",
          "sourceIPAddress": "111.111.111.111",
          "arrayKey": ["value", "another value"],
          "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
          "SomeObject": null,
          "ThisFlag": true
        }"#;
        for pattern in [
            r#"{ $.eventType = "UpdateTrail" }"#,
            "{ $.sourceIPAddress != 123.123.* }",
            r#"{ $.arrayKey[0] = "value" }"#,
            "{ $.objectList[1].id = 2 }",
            "{ $.SomeObject IS NULL }",
            "{ $.SomeOtherObject NOT EXISTS }",
            "{ $.ThisFlag IS TRUE }",
        ] {
            check(pattern, event, true);
        }
        for pattern in [
            r#"{ $.eventType = "PutEvent" }"#,
            "{ $.sourceIPAddress != 111.111.* }",
            r#"{ $.arrayKey[1] = "value" }"#,
            "{ $.objectList[0].id = 2 }",
            "{ $.eventType IS NULL }",
            "{ $.eventType NOT EXISTS }",
            "{ $.ThisFlag IS FALSE }",
            // "If arrayKey is not an array this will be false."
            r#"{ $.eventType[0] = "UpdateTrail" }"#,
            "{ $.objectList[5].id = 2 }",
        ] {
            check(pattern, event, false);
        }
        // Wildcards: "*Event will match PutEvent and GetEvent. Event* will
        // match EventId and EventName. Ev*ent will only match the actual
        // string Ev*ent."
        for (value, pattern, expected) in [
            ("PutEvent", "*Event", true),
            ("GetEvent", "*Event", true),
            ("EventId", "Event*", true),
            ("EventName", "Event*", true),
            ("EventName", "*Event", false),
            ("Event", "Ev*ent", false),
            ("Ev*ent", "Ev*ent", true),
        ] {
            check(
                &format!("{{ $.name = {pattern} }}"),
                &format!("{{\"name\": \"{value}\"}}"),
                expected,
            );
        }
        // OR in JSON filters.
        let bar = r#"{"foo": "bar"}"#;
        let baz = r#"{"foo": "baz"}"#;
        check_all("{$.foo = bar}", &[(bar, true), (baz, false)]);
        check_all("{$.foo = baz }", &[(bar, false), (baz, true)]);
        check_all("{$.foo = bar || $.foo = baz }", &[(bar, true), (baz, true)]);
    }

    // Same page, "JSON Compound Conditions".
    #[test]
    fn documented_json_compound_conditions() {
        let event = r#"{
          "user": {"id": 1, "email": "John.Stiles@example.com"},
          "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"}
          ],
          "actions": ["GET", "PUT", "DELETE"],
          "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
        }"#;
        for (pattern, expected) in [
            (
                r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
                true,
            ),
            (
                r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
                false,
            ),
            (
                r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
                true,
            ),
            (
                r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
                false,
            ),
            ("{ $.coordinates[2][0] = 7 }", true),
        ] {
            check(pattern, event, expected);
        }
        // "JSON Special Considerations": a selector on an array matches
        // neither = nor !=.
        check("{$.users = 1}", r#"{"users": [1, 2, 3]}"#, false);
        check("{$.users != 1}", r#"{"users": [1, 2, 3]}"#, false);
    }

    // Same page, "Numeric Comparisons".
    #[test]
    fn documented_json_numeric_comparisons() {
        let event = r#"{
          "latency": 1500, "numbers": [3, 0.001], "errorCode": 400,
          "processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}]
        }"#;
        for pattern in [
            "{ $.latency >= 500 }",
            "{ $.numbers[0] < 10e3 }",
            "{ $.numbers[1] < 10e-3 }",
            "{ $.processes[4].averageRuntime <= 55.5 }",
            "{ $.errorCode = 400 }",
            "{ $.errorCode != 500 }",
            "{ $.latency > +1000 }",
        ] {
            check(pattern, event, true);
        }
        for pattern in [
            "{ $.latency < 500 }",
            "{ $.numbers[0] < 10e-3 }",
            "{ $.processes[4].averageRuntime < 55.5 }",
            "{ $.errorCode = 500 }",
            "{ $.errorCode != 400 }",
            "{ $.latency > 1e4 }",
            "{ $.missing > 1 }",
        ] {
            check(pattern, event, false);
        }
        // Numbers compare as numbers, strings as strings.
        check("{ $.errorCode = 400.0 }", r#"{"errorCode": 400}"#, true);
        check("{ $.errorCode = 4* }", r#"{"errorCode": 404}"#, true);
        check("{ $.errorCode = 400 }", r#"{"errorCode": "400"}"#, true);
        check("{ $.errorCode > 300 }", r#"{"errorCode": "400"}"#, false);
        check("{ $.flag = true }", r#"{"flag": true}"#, true);
    }

    // Metric filter patterns the CIS AWS Foundations Benchmark (section 4,
    // "Ensure a log metric filter and alarm exist for …") prescribes, e.g.
    // https://tenable.com/audits/items/CIS_Amazon_Web_Services_Foundations_v1.5.0_L1.audit:00a418b93cdf6c4fb1b143ea02d295d3
    #[test]
    fn documented_cloudtrail_patterns() {
        let unauthorized =
            r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#;
        check_all(
            unauthorized,
            &[
                (r#"{"errorCode": "Client.UnauthorizedOperation"}"#, true),
                (r#"{"errorCode": "AccessDeniedException"}"#, true),
                (r#"{"errorCode": "ThrottlingException"}"#, false),
                (r#"{"eventName": "DescribeInstances"}"#, false),
            ],
        );
        let root = r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#;
        check_all(
            root,
            &[
                (
                    r#"{"userIdentity": {"type": "Root"}, "eventType": "AwsApiCall"}"#,
                    true,
                ),
                (
                    r#"{"userIdentity": {"type": "Root", "invokedBy": "s3.amazonaws.com"}, "eventType": "AwsApiCall"}"#,
                    false,
                ),
                (
                    r#"{"userIdentity": {"type": "Root"}, "eventType": "AwsServiceEvent"}"#,
                    false,
                ),
            ],
        );
        let kms = "{($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion))}";
        check_all(
            kms,
            &[
                (
                    r#"{"eventSource": "kms.amazonaws.com", "eventName": "DisableKey"}"#,
                    true,
                ),
                (
                    r#"{"eventSource": "kms.amazonaws.com", "eventName": "Encrypt"}"#,
                    false,
                ),
            ],
        );
        check_all(
            r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
            &[
                (
                    r#"{"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"}"#,
                    true,
                ),
                (r#"{"eventName": "ConsoleLogin"}"#, false),
            ],
        );
    }

    #[test]
    fn json_patterns_need_json_objects() {
        for message in [
            "level=error",
            "ERROR {\"level\": \"error\"}",
            "[{\"level\": \"error\"}]",
            "{\"level\": \"error\"",
            "",
        ] {
            check(r#"{ $.level = "error" }"#, message, false);
        }
        check(
            r#"{ $.level = "error" }"#,
            r#"  {"level": "error"}  "#,
            true,
        );
        check(
            r#"{ $.a.b-c_d = %^x\d+$% }"#,
            r#"{"a": {"b-c_d": "x12"}}"#,
            true,
        );
        check(r#"{ $.a != %^x% }"#, r#"{"a": "y"}"#, true);
        check(
            r#"{ $.a = "spaced value" }"#,
            r#"{"a": "spaced value"}"#,
            true,
        );
        check("{ $.latency = * }", r#"{"latency": 12}"#, true);
        check("{ $.latency = * }", r#"{"other": 12}"#, false);
        check("{ $.latency = * }", r#"{"latency": null}"#, false);
        check("{ $.a != 1 }", r#"{"b": 2}"#, false);
        check("{ $.a IS NULL }", r#"{"b": 2}"#, false);
        check("{ ((($.a = 1))) }", r#"{"a": 1}"#, true);
    }

    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
    // ("Using Metric Filters to Extract Values from Space-Delimited Log
    // Events" and "OR Pattern Matching").
    #[test]
    fn documented_space_delimited() {
        let events = [
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.0" 404 880"#,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:37 -0700] "GET /index.html HTTP/1.0" 403 2326"#,
        ];
        for (pattern, expected) in [
            (
                "[ip, user, username, timestamp, request, status_code, bytes]",
                [true, true, true, true, true],
            ),
            ("[..., status_code, bytes]", [true, true, true, true, true]),
            (
                "[ip, user, ..., status_code, bytes]",
                [true, true, true, true, true],
            ),
            ("[ip, user, ...]", [true, true, true, true, true]),
            (
                "[ip, user, username, timestamp, request, status_code, bytes > 1000]",
                [true, true, true, false, true],
            ),
            (
                "[ip, user, username, timestamp, request, status_code = 200, bytes]",
                [true, false, true, false, false],
            ),
            (
                "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
                [false, false, false, true, true],
            ),
            (
                "[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]",
                [false, false, false, true, true],
            ),
            (
                "[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
                [false, false, false, true, true],
            ),
            (
                "[ip, user, username, timestamp, request, status_code = 4* && status_code != 404, bytes]",
                [false, false, false, false, true],
            ),
            ("[ip, user, username]", [false, false, false, false, false]),
            (
                "[ip, user, username, timestamp, request, status_code, bytes, extra]",
                [false, false, false, false, false],
            ),
        ] {
            for (event, expected) in events.iter().zip(expected) {
                check(pattern, event, expected);
            }
        }
        // "OR Pattern Matching" in space-delimited filters. (The page also
        // says `[w1!=ERROR&&w1!=WARN, w2]` matches "ERROR WARN message",
        // which no reading of its own rules allows: that line has three
        // fields and starts with ERROR.)
        let events = ["ERROR WARN message", "ERROR message", "WARN message"];
        for (pattern, expected) in [
            ("[w1=ERROR, w2]", [false, true, false]),
            ("[w1=ERROR || w1=WARN, w2]", [false, true, true]),
            ("[w1!=ERROR&&w1!=WARN, w2]", [false, false, false]),
        ] {
            for (event, expected) in events.iter().zip(expected) {
                check(pattern, event, expected);
            }
        }
        check("[w1!=ERROR&&w1!=WARN, w2]", "INFO message", true);
    }

    #[test]
    fn space_delimited_fields_and_values() {
        check(
            r#"[component="HttpServer", ..., result_code != 200, latency]"#,
            "HttpServer a b 500 12",
            true,
        );
        check(
            r#"[component="HttpServer", ..., result_code != 200, latency]"#,
            "HttpServer a b 200 12",
            false,
        );
        check("[a, b = %^x[0-9]+$%, c]", "one x12 three", true);
        check("[a, b = %^x[0-9]+$%, c]", "one y12 three", false);
        check("[a, b]", "  one\t two  ", true);
        check("[a = \"quoted value\", b]", "\"quoted value\" two", true);
        check("[a, b > 10]", "one ten", false);
        check("[a, b = 10]", "one 10.0", true);
        check("[a, b = 1*]", "one 10.0", true);
        check("[...]", "", true);
        check("[a]", "", false);
    }

    #[test]
    fn extracted_values() {
        // The page's own example: fields the ellipsis covers, and the empty
        // slot after the trailing comma, are named by position.
        check_extract(
            "[..., request=*.html*, status_code=4*,]",
            r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#,
            Some(&[
                ("$status_code", "404"),
                ("$request", "GET /index.html HTTP/1.0"),
                ("$7", "1534"),
                ("$4", "10/Oct/2000:13:25:15 -0700"),
                ("$3", "frank"),
                ("$2", "-"),
                ("$1", "127.0.0.1"),
            ]),
        );
        check_extract(
            "[ip, user, status = 404]",
            "1.2.3.4 bob 404",
            Some(&[("$ip", "1.2.3.4"), ("$user", "bob"), ("$status", "404")]),
        );
        check_extract("[ip, user, status = 404]", "1.2.3.4 bob 200", None);
        // Other kinds of pattern extract nothing.
        check_extract("ERROR", "ERROR x", Some(&[]));
        check_extract("{ $.latency > 100 }", r#"{"latency": 250}"#, Some(&[]));
        check_extract("{ $.latency > 100 }", r#"{"latency": 20}"#, None);
    }

    #[test]
    fn metric_values() {
        let json = FilterPattern::parse("{ $.latency = * }").expect("parses");
        let found = json
            .extract(r#"{"latency": 250, "nested": {"list": [1.5, "x"]}, "obj": {}}"#)
            .expect("matches");
        assert_eq!(found.value("$.latency").as_deref(), Some("250"));
        assert_eq!(found.value("$.nested.list[0]").as_deref(), Some("1.5"));
        assert_eq!(found.value("$.nested.list[1]").as_deref(), Some("x"));
        assert_eq!(found.value("$.obj"), None);
        assert_eq!(found.value("$.missing"), None);
        assert_eq!(found.value("$.latency junk"), None);

        let delimited = FilterPattern::parse("[ip, user, ..., size]").expect("parses");
        let found = delimited.extract("1.2.3.4 bob GET 1534").expect("matches");
        assert_eq!(found.value("$size").as_deref(), Some("1534"));
        assert_eq!(found.value("$3").as_deref(), Some("GET"));
        assert_eq!(found.value("$.size"), None);
        assert_eq!(found.extracted_values().len(), 4);
    }

    // The patterns tests/compat/test_logs.py sends.
    #[test]
    fn compat_test_patterns() {
        check("ERROR -timeout", "ERROR disk full", true);
        check("ERROR -timeout", "ERROR timeout talking to db", false);
        check("?WARN ?INFO", "INFO all good", true);
        check("\"talking to\"", "ERROR timeout talking to db", true);
        check(
            r#"{ $.level = "error" }"#,
            r#"{"level": "error", "latency": 250}"#,
            true,
        );
        check(
            "{ $.latency > 100 }",
            r#"{"level": "info", "latency": 20}"#,
            false,
        );
        check(
            "[ip, identity, user, timestamp, request, status_code = 4*, bytes]",
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 404 2326"#,
            true,
        );
        check("\"cli 1\"", "cli 1", true);
        check("\"cli 1\"", "cli 2", false);
    }

    #[test]
    fn parse_errors() {
        const INVALID: &str = "Invalid filter pattern";
        for pattern in [
            "{ $.level = }",
            "{ $.x = 1 } }",
            "{ }",
            "{ $.a = 1 && }",
            "{ ($.a = 1 }",
            "{ $.a = 1) }",
            "{ $.a == 1 }",
            "{ $.a => 1 }",
            "{ $[0] = 1 }",
            "{ $ = 1 }",
            "{ a = 1 }",
            "{ $.a. = 1 }",
            "{ $.a[x] = 1 }",
            "{ $.a > abc }",
            "{ $.a > \"10\" }",
            "{ $.a < %x% }",
            "{ $.a IS }",
            "{ $.a IS MAYBE }",
            "{ $.a NOT THERE }",
            "{ $.a = \"unterminated }",
            "{ $.a = %% }",
            "{ $.a = %x% || $.b = %y% || $.c = %z% }",
            "[a, b",
            "[]",
            "[..., a, ...]",
            "[a = 1 && b = 2]",
            "[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]",
            "[a = %x%, b = %y%, c = %z%]",
            "[a b]",
            "[a = ]",
            "[a IS NULL]",
            "%abc",
            "%%",
            "%a%b%",
            "%something!%",
            "%(a)%",
            "%[a-z]+(x|y)%",
            "%ünïcode%",
            "%a{%",
            "?",
            "-",
            "ERROR -",
            "-\"\"",
            "\"unterminated",
            "\"a\"b",
        ] {
            check_error(pattern, INVALID);
        }
        check_error(
            "{ $.x = ",
            "If a filter pattern starts with '{' it must end with '}'",
        );
        check_error(
            "{ $.level = \"error\"",
            "If a filter pattern starts with '{' it must end with '}'",
        );
        check_error(
            "email@domain.com",
            "Invalid character(s) in term 'email@domain.com'",
        );
        check_error("ERROR ERROR:", "Invalid character(s) in term 'ERROR:'");
        check_error("“smart”", "Invalid character(s) in term '“smart”'");
        check_error(
            "{ $.user.email = John.Doe@example.com }",
            "Invalid character(s) in term 'John.Doe@example.com'",
        );
        check_error("[a = “x”, b]", "Invalid character(s) in term '“x”'");
        // Two regexes are within AWS's quota, and an escaped parenthesis is
        // a literal, not a subpattern.
        assert!(FilterPattern::parse("{ $.a = %x% || $.b = %y% }").is_ok());
        assert!(FilterPattern::parse("%\\(literal\\)%").is_ok());
    }
}
