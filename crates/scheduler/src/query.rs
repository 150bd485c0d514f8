//! The ECS cluster query language: `memberOf` placement constraints and the
//! `ListContainerInstances` filter.
//!
//! ```text
//! expression := or
//! or         := and (("or" | "||") and)*
//! and        := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" expression ")" | comparison
//! comparison := subject operator [argument]
//! argument   := value | "[" value ("," value)* "]"     ("(" … ")" also accepted for in/not_in)
//! value      := bare-word | 'quoted' | "quoted"
//! ```
//!
//! Subjects: `attribute:<name>` (or a bare attribute name), `ec2InstanceId`,
//! `agentConnected`, `agentVersion`, `registeredAt`, `runningTasksCount`,
//! `task:group`. Operators: `==`/`equals`, `!=`/`not_equals`,
//! `>`/`greater_than`, `>=`/`greater_than_equal`, `<`/`less_than`,
//! `<=`/`less_than_equal`, `exists`, `!exists`/`not_exists`, `in`,
//! `!in`/`not_in`, `=~`/`matches`, `!~`/`not_matches`.
//!
//! A subject holds a set of values (an attribute has zero or one, an
//! instance hosts any number of task groups); a comparison holds when some
//! value satisfies it, so `attribute:stack != prod` selects instances that
//! have a `stack` attribute other than `prod`, as ECS documents. `=~`
//! takes a (Java-style) regular expression that must match the whole value:
//! `t2.*` selects `t2.small`. `registeredAt` takes `2018-06-18T22:28:28+00:00`,
//! `…Z`, `2018-06-18T22:28:28` (UTC) or `2018-06-18`; `agentVersion`
//! compares dotted numbers.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SchedulerError;

/// The longest expression ECS accepts.
pub const MAX_EXPRESSION_CHARS: usize = 2000;
/// The deepest nesting of parentheses and `not` accepted: the parser and
/// the evaluator recurse once per level, and requests are parsed on threads
/// with small stacks.
pub const MAX_NESTING_DEPTH: usize = 100;

/// What an expression is evaluated against: one container instance.
pub trait QueryTarget {
    /// `None` when the instance lacks the attribute; `Some(None)` when it has
    /// it without a value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn ec2_instance_id(&self) -> Option<&str>;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    fn registered_at_ms(&self) -> i64;
    fn running_tasks_count(&self) -> u32;
    /// Whether some task group present on the instance satisfies `predicate`.
    fn any_task_group(&self, predicate: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// A parsed cluster query expression.
#[derive(Clone, Debug)]
pub struct Expr {
    source: String,
    root: Node,
    depends_on_tasks: bool,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Expr::parse(&source).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Clone, Debug)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Comparison(Comparison),
}

#[derive(Clone, Debug)]
struct Comparison {
    subject: Subject,
    operator: Operator,
    argument: Argument,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    Attribute(String),
    Ec2InstanceId,
    AgentConnected,
    AgentVersion,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

impl Subject {
    fn name(&self) -> String {
        match self {
            Subject::Attribute(name) => format!("attribute:{name}"),
            Subject::Ec2InstanceId => "ec2InstanceId".into(),
            Subject::AgentConnected => "agentConnected".into(),
            Subject::AgentVersion => "agentVersion".into(),
            Subject::RegisteredAt => "registeredAt".into(),
            Subject::RunningTasksCount => "runningTasksCount".into(),
            Subject::TaskGroup => "task:group".into(),
        }
    }

    fn allows(&self, operator: Operator) -> bool {
        use Operator::*;
        match self {
            Subject::Attribute(_) => true,
            Subject::Ec2InstanceId | Subject::AgentConnected => {
                matches!(operator, Eq | Ne | In | NotIn | Matches | NotMatches)
            }
            Subject::TaskGroup => matches!(
                operator,
                Eq | Ne | In | NotIn | Matches | NotMatches | Exists | NotExists
            ),
            Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
                matches!(operator, Eq | Ne | Gt | Ge | Lt | Le)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Operator {
    fn from_symbol_or_word(text: &str) -> Option<Operator> {
        use Operator::*;
        Some(match text.to_ascii_lowercase().as_str() {
            "==" | "equals" => Eq,
            "!=" | "not_equals" => Ne,
            ">" | "greater_than" => Gt,
            ">=" | "greater_than_equal" => Ge,
            "<" | "less_than" => Lt,
            "<=" | "less_than_equal" => Le,
            "exists" => Exists,
            "!exists" | "not_exists" => NotExists,
            "in" => In,
            "!in" | "not_in" => NotIn,
            "=~" | "matches" => Matches,
            "!~" | "not_matches" => NotMatches,
            _ => return None,
        })
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Operator::Eq => ordering == Ordering::Equal,
            Operator::Ne => ordering != Ordering::Equal,
            Operator::Gt => ordering == Ordering::Greater,
            Operator::Ge => ordering != Ordering::Less,
            Operator::Lt => ordering == Ordering::Less,
            Operator::Le => ordering != Ordering::Greater,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
enum Argument {
    None,
    Text(String),
    List(Vec<String>),
    Pattern(Box<Regex>),
    /// registeredAt: milliseconds since the epoch.
    Time(i64),
    Count(u64),
    Version(Vec<u64>),
}

impl Expr {
    /// Parses an expression; the error names the position (0-based, in
    /// characters) where it goes wrong.
    pub fn parse(source: &str) -> Result<Expr, SchedulerError> {
        let chars: Vec<char> = source.chars().collect();
        let error = |position: usize, detail: String| SchedulerError::InvalidExpression {
            expression: source.to_string(),
            position,
            detail,
        };
        if chars.len() > MAX_EXPRESSION_CHARS {
            return Err(error(
                MAX_EXPRESSION_CHARS,
                format!("the expression is longer than {MAX_EXPRESSION_CHARS} characters"),
            ));
        }
        let tokens = lex(&chars).map_err(|(position, detail)| error(position, detail))?;
        let mut parser = Parser {
            tokens: &tokens,
            next: 0,
            end: chars.len(),
            depth: 0,
            depends_on_tasks: false,
        };
        let root = parser
            .expression()
            .and_then(|root| match parser.peek() {
                None => Ok(root),
                Some(token) => Err((token.position, format!("unexpected {}", token.describe()))),
            })
            .map_err(|(position, detail)| error(position, detail))?;
        Ok(Expr {
            source: source.to_string(),
            root,
            depends_on_tasks: parser.depends_on_tasks,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `task:group` or `runningTasksCount`,
    /// which change as tasks are placed.
    pub fn depends_on_tasks(&self) -> bool {
        self.depends_on_tasks
    }

    /// Whether the instance satisfies the expression.
    pub fn matches(&self, target: &(impl QueryTarget + ?Sized)) -> bool {
        evaluate(&self.root, target)
    }
}

fn evaluate(node: &Node, target: &(impl QueryTarget + ?Sized)) -> bool {
    match node {
        Node::And(left, right) => evaluate(left, target) && evaluate(right, target),
        Node::Or(left, right) => evaluate(left, target) || evaluate(right, target),
        Node::Not(inner) => !evaluate(inner, target),
        Node::Comparison(comparison) => compare(comparison, target),
    }
}

fn compare(comparison: &Comparison, target: &(impl QueryTarget + ?Sized)) -> bool {
    let Comparison {
        subject,
        operator,
        argument,
    } = comparison;
    match subject {
        Subject::Attribute(name) => match (operator, target.attribute(name)) {
            (Operator::Exists, present) => present.is_some(),
            (Operator::NotExists, present) => present.is_none(),
            (_, Some(Some(value))) => compare_text(value, *operator, argument),
            (_, _) => false,
        },
        Subject::Ec2InstanceId => target
            .ec2_instance_id()
            .is_some_and(|id| compare_text(id, *operator, argument)),
        Subject::AgentConnected => {
            let value = if target.agent_connected() {
                "true"
            } else {
                "false"
            };
            compare_text(value, *operator, argument)
        }
        Subject::AgentVersion => match (target.agent_version().and_then(parse_version), argument) {
            (Some(version), Argument::Version(wanted)) => operator.holds(version.cmp(wanted)),
            _ => false,
        },
        Subject::RegisteredAt => match argument {
            Argument::Time(wanted) => operator.holds(target.registered_at_ms().cmp(wanted)),
            _ => false,
        },
        Subject::RunningTasksCount => match argument {
            Argument::Count(wanted) => {
                operator.holds(u64::from(target.running_tasks_count()).cmp(wanted))
            }
            _ => false,
        },
        Subject::TaskGroup => match operator {
            Operator::Exists => target.any_task_group(&mut |_| true),
            Operator::NotExists => !target.any_task_group(&mut |_| true),
            _ => target.any_task_group(&mut |group| compare_text(group, *operator, argument)),
        },
    }
}

fn compare_text(value: &str, operator: Operator, argument: &Argument) -> bool {
    match (operator, argument) {
        (Operator::In, Argument::List(values)) => values.iter().any(|v| v == value),
        (Operator::NotIn, Argument::List(values)) => values.iter().all(|v| v != value),
        (Operator::Matches, Argument::Pattern(pattern)) => pattern.is_match(value),
        (Operator::NotMatches, Argument::Pattern(pattern)) => !pattern.is_match(value),
        (Operator::Eq, Argument::Text(wanted)) => value == wanted,
        (Operator::Ne, Argument::Text(wanted)) => value != wanted,
        (_, Argument::Text(wanted)) => {
            // Numbers compare as numbers, anything else as text.
            let ordering = match (value.parse::<i64>(), wanted.parse::<i64>()) {
                (Ok(a), Ok(b)) => a.cmp(&b),
                _ => value.cmp(wanted.as_str()),
            };
            operator.holds(ordering)
        }
        _ => false,
    }
}

fn parse_version(text: &str) -> Option<Vec<u64>> {
    text.trim_start_matches('v')
        .split('.')
        .map(|part| part.parse::<u64>().ok())
        .collect()
}

// ---------------------------------------------------------------- lexer ---

#[derive(Clone, Debug, PartialEq)]
enum TokenKind {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    /// `==`, `!=`, `>`, `>=`, `<`, `<=`, `=~`, `!~`, `!in`, `!exists`.
    Operator(String),
    And,
    Or,
    Not,
    Word(String),
    Quoted(String),
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    position: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.kind {
            TokenKind::LeftParen => "'('".into(),
            TokenKind::RightParen => "')'".into(),
            TokenKind::LeftBracket => "'['".into(),
            TokenKind::RightBracket => "']'".into(),
            TokenKind::Comma => "','".into(),
            TokenKind::Operator(op) => format!("'{op}'"),
            TokenKind::And => "'&&'".into(),
            TokenKind::Or => "'||'".into(),
            TokenKind::Not => "'!'".into(),
            TokenKind::Word(word) => format!("'{word}'"),
            TokenKind::Quoted(text) => format!("'{text}'"),
        }
    }
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"()[],'\"=!<>~&|".contains(c)
}

fn lex(chars: &[char]) -> Result<Vec<Token>, (usize, String)> {
    let mut tokens = Vec::new();
    let mut i = 0;
    let word_at = |i: usize, word: &str| -> bool {
        let len = word.chars().count();
        chars.len() >= i + len
            && chars[i..i + len].iter().copied().eq(word.chars())
            && chars.get(i + len).is_none_or(|c| !is_word_char(*c))
    };
    while i < chars.len() {
        let c = chars[i];
        let position = i;
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (TokenKind::LeftParen, 1),
            ')' => (TokenKind::RightParen, 1),
            '[' => (TokenKind::LeftBracket, 1),
            ']' => (TokenKind::RightBracket, 1),
            ',' => (TokenKind::Comma, 1),
            '=' => match next {
                Some('=') => (TokenKind::Operator("==".into()), 2),
                Some('~') => (TokenKind::Operator("=~".into()), 2),
                _ => return Err((position, "unexpected '=' (did you mean '=='?)".into())),
            },
            '!' => match next {
                Some('=') => (TokenKind::Operator("!=".into()), 2),
                Some('~') => (TokenKind::Operator("!~".into()), 2),
                _ if word_at(i + 1, "in") => (TokenKind::Operator("!in".into()), 3),
                _ if word_at(i + 1, "exists") => (TokenKind::Operator("!exists".into()), 7),
                _ => (TokenKind::Not, 1),
            },
            '>' | '<' => match next {
                Some('=') => (TokenKind::Operator(format!("{c}=")), 2),
                _ => (TokenKind::Operator(c.to_string()), 1),
            },
            '&' => match next {
                Some('&') => (TokenKind::And, 2),
                _ => return Err((position, "unexpected '&' (did you mean '&&'?)".into())),
            },
            '|' => match next {
                Some('|') => (TokenKind::Or, 2),
                _ => return Err((position, "unexpected '|' (did you mean '||'?)".into())),
            },
            '~' => return Err((position, "unexpected '~' (did you mean '=~'?)".into())),
            '\'' | '"' => {
                let close = chars[i + 1..].iter().position(|x| *x == c).ok_or((
                    position,
                    format!("the quoted value starting here has no closing {c}"),
                ))?;
                let text: String = chars[i + 1..i + 1 + close].iter().collect();
                (TokenKind::Quoted(text), close + 2)
            }
            _ => {
                let len = chars[i..].iter().take_while(|c| is_word_char(**c)).count();
                let word: String = chars[i..i + len].iter().collect();
                let kind = match word.to_ascii_lowercase().as_str() {
                    "and" => TokenKind::And,
                    "or" => TokenKind::Or,
                    "not" => TokenKind::Not,
                    _ => TokenKind::Word(word),
                };
                (kind, len)
            }
        };
        tokens.push(Token { kind, position });
        i += len;
    }
    Ok(tokens)
}

// --------------------------------------------------------------- parser ---

struct Parser<'a> {
    tokens: &'a [Token],
    next: usize,
    end: usize,
    /// Parentheses and `not`s open around the current token.
    depth: usize,
    depends_on_tasks: bool,
}

type ParseResult<T> = Result<T, (usize, String)>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn unexpected_end(&self, expected: &str) -> (usize, String) {
        (
            self.end,
            format!("the expression ends where {expected} was expected"),
        )
    }

    fn expression(&mut self) -> ParseResult<Node> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.kind == TokenKind::Or) {
            self.next += 1;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> ParseResult<Node> {
        let mut left = self.unary()?;
        while self.peek().is_some_and(|t| t.kind == TokenKind::And) {
            self.next += 1;
            let right = self.unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> ParseResult<Node> {
        let Some(token) = self.advance() else {
            return Err(self.unexpected_end("a subject such as attribute:ecs.instance-type"));
        };
        let opens = matches!(token.kind, TokenKind::Not | TokenKind::LeftParen);
        if opens {
            if self.depth == MAX_NESTING_DEPTH {
                return Err((
                    token.position,
                    format!(
                        "the expression nests parentheses and 'not' deeper than {MAX_NESTING_DEPTH} levels"
                    ),
                ));
            }
            self.depth += 1;
        }
        let node = self.nested(token);
        if opens {
            self.depth -= 1;
        }
        node
    }

    /// What follows `token` in [`Parser::unary`]; `depth` already counts it
    /// if it opens a level.
    fn nested(&mut self, token: Token) -> ParseResult<Node> {
        match token.kind {
            TokenKind::Not => Ok(Node::Not(Box::new(self.unary()?))),
            TokenKind::LeftParen => {
                let inner = self.expression()?;
                match self.advance() {
                    Some(Token {
                        kind: TokenKind::RightParen,
                        ..
                    }) => Ok(inner),
                    Some(other) => Err((
                        other.position,
                        format!("unexpected {} (expected ')')", other.describe()),
                    )),
                    None => Err((
                        self.end,
                        format!("the '(' at position {} is never closed", token.position),
                    )),
                }
            }
            TokenKind::Word(word) => self.comparison(&word, token.position),
            _ => Err((
                token.position,
                format!(
                    "unexpected {} (expected a subject such as attribute:ecs.instance-type)",
                    token.describe()
                ),
            )),
        }
    }

    fn comparison(&mut self, word: &str, position: usize) -> ParseResult<Node> {
        let subject = match word {
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "registeredAt" => Subject::RegisteredAt,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            _ => match word.strip_prefix("attribute:") {
                Some("") => return Err((position, "the attribute name is missing".into())),
                Some(name) => Subject::Attribute(name.to_string()),
                None if word.contains(':') => {
                    return Err((
                        position,
                        format!(
                            "unknown subject '{word}' (use attribute:<name>, ec2InstanceId, \
                             agentConnected, agentVersion, registeredAt, runningTasksCount or \
                             task:group)"
                        ),
                    ))
                }
                None => Subject::Attribute(word.to_string()),
            },
        };
        if matches!(subject, Subject::TaskGroup | Subject::RunningTasksCount) {
            self.depends_on_tasks = true;
        }
        let Some(token) = self.advance() else {
            return Err(self.unexpected_end(&format!("an operator after '{word}'")));
        };
        let operator = match &token.kind {
            TokenKind::Operator(text) | TokenKind::Word(text) => {
                Operator::from_symbol_or_word(text)
            }
            _ => None,
        }
        .ok_or_else(|| {
            (
                token.position,
                format!(
                    "unexpected {} (expected an operator such as ==, !=, in, exists or =~)",
                    token.describe()
                ),
            )
        })?;
        if !subject.allows(operator) {
            return Err((
                token.position,
                format!(
                    "the operator {} can't be used with {}",
                    token.describe(),
                    subject.name()
                ),
            ));
        }
        let argument = match operator {
            Operator::Exists | Operator::NotExists => Argument::None,
            Operator::In | Operator::NotIn => Argument::List(self.list()?),
            _ => {
                let (text, value_position) = self.value()?;
                typed_argument(&subject, operator, text, value_position)?
            }
        };
        Ok(Node::Comparison(Comparison {
            subject,
            operator,
            argument,
        }))
    }

    fn value(&mut self) -> ParseResult<(String, usize)> {
        match self.advance() {
            Some(Token {
                kind: TokenKind::Word(text) | TokenKind::Quoted(text),
                position,
            }) => Ok((text, position)),
            Some(other) => Err((
                other.position,
                format!("unexpected {} (expected a value)", other.describe()),
            )),
            None => Err(self.unexpected_end("a value")),
        }
    }

    fn list(&mut self) -> ParseResult<Vec<String>> {
        let close = match self.advance() {
            Some(Token {
                kind: TokenKind::LeftBracket,
                ..
            }) => TokenKind::RightBracket,
            Some(Token {
                kind: TokenKind::LeftParen,
                ..
            }) => TokenKind::RightParen,
            Some(other) => {
                return Err((
                    other.position,
                    format!(
                        "unexpected {} (expected a list such as [a, b])",
                        other.describe()
                    ),
                ))
            }
            None => return Err(self.unexpected_end("a list such as [a, b]")),
        };
        let mut values = vec![self.value()?.0];
        loop {
            match self.advance() {
                Some(Token {
                    kind: TokenKind::Comma,
                    ..
                }) => values.push(self.value()?.0),
                Some(token) if token.kind == close => return Ok(values),
                Some(other) => {
                    return Err((
                        other.position,
                        format!(
                            "unexpected {} (expected ',' or the list's end)",
                            other.describe()
                        ),
                    ))
                }
                None => return Err(self.unexpected_end("the end of the list")),
            }
        }
    }
}

fn typed_argument(
    subject: &Subject,
    operator: Operator,
    text: String,
    position: usize,
) -> ParseResult<Argument> {
    if matches!(operator, Operator::Matches | Operator::NotMatches) {
        return Regex::new(&format!("^(?:{text})$"))
            .map(|regex| Argument::Pattern(Box::new(regex)))
            .map_err(|_| {
                (
                    position,
                    format!("'{text}' is not a valid regular expression"),
                )
            });
    }
    match subject {
        Subject::RegisteredAt => parse_timestamp_ms(&text).map(Argument::Time).ok_or((
            position,
            format!(
                "'{text}' is not a date (use 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, \
                 2018-06-18T22:28:28 or 2018-06-18)"
            ),
        )),
        Subject::RunningTasksCount => text
            .parse::<u64>()
            .map(Argument::Count)
            .map_err(|_| (position, format!("'{text}' is not a task count"))),
        Subject::AgentVersion => parse_version(&text).map(Argument::Version).ok_or((
            position,
            format!("'{text}' is not an agent version such as 1.14.5"),
        )),
        _ => Ok(Argument::Text(text)),
    }
}

/// Parses the `registeredAt` date formats into milliseconds since the epoch.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = parse_digits(date_parts.next()?, 4)?;
    let month: i64 = parse_digits(date_parts.next()?, 2)?;
    let day: i64 = parse_digits(date_parts.next()?, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else if let Some(at) = time.rfind(['+', '-']) {
            let (clock, offset) = time.split_at(at);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = offset[1..].split_once(':')?;
            let hours: i64 = parse_digits(hours, 2)?;
            let minutes: i64 = parse_digits(minutes, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            (clock, sign * (hours * 60 + minutes))
        } else {
            (time, 0)
        };
        let (clock, fraction) = match clock.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (clock, None),
        };
        let mut clock_parts = clock.splitn(3, ':');
        let hours: i64 = parse_digits(clock_parts.next()?, 2)?;
        let minutes: i64 = parse_digits(clock_parts.next()?, 2)?;
        let seconds: i64 = parse_digits(clock_parts.next()?, 2)?;
        if hours > 23 || minutes > 59 || seconds > 60 {
            return None;
        }
        let millis = match fraction {
            None => 0,
            Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{f:0<3}")[..3].parse::<i64>().ok()?
            }
            Some(_) => return None,
        };
        ms += ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
        ms -= offset_minutes * 60_000;
    }
    Some(ms)
}

fn parse_digits(text: &str, width: usize) -> Option<i64> {
    if text.len() == width && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Fixture {
        attributes: BTreeMap<&'static str, Option<&'static str>>,
        ec2_instance_id: Option<&'static str>,
        agent_connected: bool,
        agent_version: Option<&'static str>,
        registered_at_ms: i64,
        running_tasks_count: u32,
        task_groups: Vec<&'static str>,
    }

    impl QueryTarget for Fixture {
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attributes.get(name).copied()
        }
        fn ec2_instance_id(&self) -> Option<&str> {
            self.ec2_instance_id
        }
        fn agent_connected(&self) -> bool {
            self.agent_connected
        }
        fn agent_version(&self) -> Option<&str> {
            self.agent_version
        }
        fn registered_at_ms(&self) -> i64 {
            self.registered_at_ms
        }
        fn running_tasks_count(&self) -> u32 {
            self.running_tasks_count
        }
        fn any_task_group(&self, predicate: &mut dyn FnMut(&str) -> bool) -> bool {
            self.task_groups.iter().any(|g| predicate(g))
        }
    }

    fn instance() -> Fixture {
        Fixture {
            attributes: BTreeMap::from([
                ("ecs.instance-type", Some("t2.small")),
                ("ecs.availability-zone", Some("us-east-1a")),
                ("ecs.capability.ecr-auth", None),
                ("stack", Some("prod")),
                ("disk-gib", Some("100")),
            ]),
            ec2_instance_id: Some("i-abcd1234"),
            agent_connected: true,
            agent_version: Some("1.14.5"),
            // 2018-02-13T10:00:00Z
            registered_at_ms: 1_518_516_000_000,
            running_tasks_count: 1,
            task_groups: vec!["service:production", "family:web"],
        }
    }

    /// Parses `expression` and checks its verdict on the fixture instance.
    fn check(expression: &str, expected: bool) {
        let expr =
            Expr::parse(expression).unwrap_or_else(|e| panic!("{expression:?} should parse: {e}"));
        assert_eq!(expr.matches(&instance()), expected, "{expression}");
    }

    /// Checks that `expression` is rejected at `position` with a message
    /// containing `detail`.
    fn check_error(expression: &str, position: usize, detail: &str) {
        match Expr::parse(expression) {
            Ok(_) => panic!("{expression:?} should not parse"),
            Err(SchedulerError::InvalidExpression {
                position: at,
                detail: message,
                ..
            }) => {
                assert_eq!(at, position, "{expression}: {message}");
                assert!(message.contains(detail), "{expression}: {message}");
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn documented_examples() {
        check("attribute:ecs.instance-type == t2.small", true);
        check(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            true,
        );
        check(
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
            false,
        );
        check(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
            true,
        );
        check("task:group == service:production", true);
        check("not(task:group == database)", true);
        check("runningTasksCount == 1", true);
        check("agentVersion < 1.14.5", false);
        check("agentVersion < 1.15.0", true);
        check("registeredAt < 2018-02-13", false);
        check("registeredAt < 2018-02-14", true);
        check("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true);
    }

    #[test]
    fn operators_by_symbol_and_by_name() {
        check("attribute:stack equals prod", true);
        check("attribute:stack not_equals prod", false);
        check("attribute:stack != dev", true);
        // != needs the attribute: "instances with stack unless it is prod".
        check("attribute:owner != dev", false);
        check("attribute:stack exists", true);
        check("attribute:owner exists", false);
        check("attribute:owner !exists", true);
        check("attribute:owner not_exists", true);
        check("attribute:ecs.capability.ecr-auth exists", true);
        check("attribute:ecs.capability.ecr-auth == x", false);
        check("attribute:stack not_in [dev, test]", true);
        check("attribute:stack !in [prod, test]", false);
        check("attribute:stack in (dev, prod)", true);
        check("attribute:ecs.instance-type matches 't2\\..*'", true);
        check("attribute:ecs.instance-type =~ t2", false);
        check("attribute:ecs.instance-type !~ m5.*", true);
        check("attribute:ecs.instance-type not_matches t2.*", false);
        check("attribute:disk-gib > 20", true);
        check("attribute:disk-gib greater_than_equal 100", true);
        check("attribute:disk-gib less_than 99", false);
        check("attribute:disk-gib <= 100", true);
        check("agentConnected == true", true);
        check("agentConnected != true", false);
        check("ec2InstanceId =~ i-.*", true);
        check("registeredAt >= 2018-02-13T10:00:00Z", true);
        check("registeredAt > 2018-02-13T10:00:00+00:00", false);
        check("registeredAt == 2018-02-13T11:00:00+01:00", true);
        check("registeredAt < 2018-02-13T10:00:00.001", true);
        check("runningTasksCount greater_than 0", true);
        check("task:group != family:web", true);
        check("task:group in [family:web]", true);
        check("task:group =~ service:.*", true);
        check("task:group exists", true);
    }

    #[test]
    fn bare_names_and_quotes() {
        check("stack == prod", true);
        check("ecs.instance-type == 't2.small'", true);
        check("attribute:stack == \"prod\"", true);
        check("attribute:stack=='prod'", true);
    }

    #[test]
    fn compound_expressions_and_precedence() {
        check("attribute:stack == dev or attribute:stack == prod", true);
        check(
            "attribute:stack == dev || attribute:stack == prod && stack == dev",
            false,
        );
        check(
            "(attribute:stack == dev || attribute:stack == prod) && stack == prod",
            true,
        );
        check("!(attribute:stack == dev) && !attribute:owner exists", true);
        check(
            "not attribute:stack == prod or runningTasksCount == 1",
            true,
        );
        check("attribute:stack == prod AND task:group == family:web", true);
    }

    #[test]
    fn malformed_expressions_point_at_the_error() {
        check_error("attribute:x === y", 14, "unexpected '='");
        check_error("", 0, "ends where a subject");
        check_error("attribute:stack", 15, "ends where an operator");
        check_error("attribute:stack prod", 16, "expected an operator");
        check_error("attribute:stack == prod and", 27, "ends where a subject");
        check_error("(attribute:stack == prod", 24, "never closed");
        check_error("attribute:stack == prod)", 23, "unexpected ')'");
        check_error("attribute:stack in prod", 19, "expected a list");
        check_error("attribute:stack in [a, b", 24, "end of the list");
        check_error("attribute:stack in [a b]", 22, "expected ','");
        check_error("attribute:stack == 'prod", 19, "no closing '");
        check_error("attribute: == x", 0, "attribute name is missing");
        check_error("task:family == x", 0, "unknown subject");
        check_error("registeredAt > yesterday", 15, "is not a date");
        check_error("registeredAt > 2018-02-30", 15, "is not a date");
        check_error("runningTasksCount > many", 20, "not a task count");
        check_error("agentVersion > latest", 15, "agent version");
        check_error(
            "ec2InstanceId > i-1",
            14,
            "can't be used with ec2InstanceId",
        );
        check_error("runningTasksCount =~ 1", 18, "can't be used");
        check_error("attribute:x =~ '('", 15, "not a valid regular expression");
        check_error("attribute:x == a & b", 17, "'&&'");
        check_error("attribute:x == a | b", 17, "'||'");
        check_error("attribute:x ~ b", 12, "'=~'");
        let too_long = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_CHARS));
        check_error(&too_long, MAX_EXPRESSION_CHARS, "longer than 2000");
    }

    #[test]
    fn error_message_names_expression_and_position() {
        let error = Expr::parse("attribute:x === y").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid expression 'attribute:x === y': unexpected '=' (did you mean '=='?) at \
             position 14."
        );
    }

    #[test]
    fn dependence_on_tasks_is_detected() {
        let static_expr = Expr::parse("attribute:stack == prod").unwrap();
        assert!(!static_expr.depends_on_tasks());
        let dynamic = Expr::parse("attribute:stack == prod and not(task:group == x)").unwrap();
        assert!(dynamic.depends_on_tasks());
        assert!(Expr::parse("runningTasksCount < 3")
            .unwrap()
            .depends_on_tasks());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("1970-01-01"), Some(0));
        assert_eq!(
            parse_timestamp_ms("2018-06-18T22:28:28Z"),
            Some(1_529_360_908_000)
        );
        assert_eq!(
            parse_timestamp_ms("2018-06-18T22:28:28+00:00"),
            Some(1_529_360_908_000)
        );
        assert_eq!(
            parse_timestamp_ms("2018-06-18T22:28:28"),
            Some(1_529_360_908_000)
        );
        assert_eq!(
            parse_timestamp_ms("2018-06-19T00:28:28+02:00"),
            Some(1_529_360_908_000)
        );
        assert_eq!(parse_timestamp_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_timestamp_ms("1900-02-29"), None);
        assert_eq!(parse_timestamp_ms("2018-6-18"), None);
        assert_eq!(parse_timestamp_ms("2018-06-18T25:00:00Z"), None);
    }

    #[test]
    fn nesting_is_limited_so_parsing_fits_a_small_stack() {
        // Found with the fuzz target fuzz/fuzz_targets/cluster_query.rs run
        // on a 2 MiB stack: 993 '(' in a 2000-character filter overflowed
        // it (tokio's worker threads, where ListContainerInstances parses
        // filters, have such stacks) and aborted the whole server.
        let nested = |open: &str, depth: usize, close: &str| {
            format!("{}stack == prod{}", open.repeat(depth), close.repeat(depth))
        };
        let chain = vec!["stack==prod"; 150].join("&&");
        let deepest = [
            nested("(", MAX_NESTING_DEPTH, ")"),
            nested("not ", MAX_NESTING_DEPTH, ""),
            chain.clone(),
        ];
        let too_deep = [
            (nested("(", 993, ")"), MAX_NESTING_DEPTH),
            (nested("! ", 993, ""), 2 * MAX_NESTING_DEPTH),
            (nested("(!", 600, ")"), MAX_NESTING_DEPTH),
        ];
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for expression in &deepest {
                    check(expression, true);
                }
                for (expression, position) in &too_deep {
                    check_error(expression, *position, "deeper than 100 levels");
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
