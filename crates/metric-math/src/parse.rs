//! Lexer and recursive-descent parser for metric math expressions.
//!
//! Precedence, lowest first: `OR`/`||`, `AND`/`&&`, comparisons
//! (`== != <= >= < >`), `+ -`, `* /`, unary minus, `^` (right associative).
//! AWS documents the operators but not their precedence; this is the usual
//! mathematical order (guessed: `-2^2` is `-4`).

use crate::MathError;

/// The longest expression GetMetricData accepts (botocore: `MetricExpression` max 2048).
pub const MAX_EXPRESSION_LENGTH: usize = 2048;

/// Nesting limit, so a hostile expression cannot exhaust the stack. AWS's own
/// limit is not documented (guessed).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Number(f64),
    Text(String),
    /// A reference to another query's Id.
    Id(String),
    /// A bare uppercase word that is not a call: `REPEAT`, `LINEAR`, `ASC`, `DESC`, `AVG` in SORT.
    Keyword(String),
    Array(Vec<Node>),
    Negate(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(Function, Vec<Node>),
}

macro_rules! functions {
    ($($variant:ident = $name:literal ($min:literal, $max:literal)),* $(,)?) => {
        /// The metric math functions Berth evaluates.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Function { $($variant),* }

        impl Function {
            pub fn from_name(name: &str) -> Option<Function> {
                match name { $($name => Some(Function::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name),* }
            }
            /// (fewest, most) arguments.
            fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max)),* }
            }
        }
    };
}

functions! {
    Abs = "ABS" (1, 1),
    Avg = "AVG" (1, 1),
    Ceil = "CEIL" (1, 1),
    DatapointCount = "DATAPOINT_COUNT" (1, 1),
    Date = "DATE" (1, 1),
    Day = "DAY" (1, 1),
    Diff = "DIFF" (1, 1),
    DiffTime = "DIFF_TIME" (1, 1),
    Epoch = "EPOCH" (1, 1),
    Fill = "FILL" (2, 2),
    First = "FIRST" (1, 1),
    Floor = "FLOOR" (1, 1),
    Hour = "HOUR" (1, 1),
    If = "IF" (2, 3),
    Last = "LAST" (1, 1),
    Log = "LOG" (1, 1),
    Log10 = "LOG10" (1, 1),
    Max = "MAX" (1, 1),
    MetricCount = "METRIC_COUNT" (1, 1),
    Metrics = "METRICS" (0, 1),
    Min = "MIN" (1, 1),
    Minute = "MINUTE" (1, 1),
    Month = "MONTH" (1, 1),
    Period = "PERIOD" (1, 1),
    Rate = "RATE" (1, 1),
    RemoveEmpty = "REMOVE_EMPTY" (1, 1),
    RunningSum = "RUNNING_SUM" (1, 1),
    Slice = "SLICE" (2, 3),
    Sort = "SORT" (3, 4),
    Stddev = "STDDEV" (1, 1),
    Sum = "SUM" (1, 1),
    TimeSeries = "TIME_SERIES" (1, 1),
    Year = "YEAR" (1, 1),
}

/// Functions AWS documents that Berth does not evaluate. They are rejected
/// with [`MathError::Unsupported`] instead of giving a wrong answer.
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "ANOMALY_DETECTION_BAND",
    "CONCAT",
    "DB_PERF_INSIGHTS",
    "INSIGHT_RULE_METRIC",
    "LAMBDA",
    "LEN",
    "REPLACE",
    "SEARCH",
    "SERVICE_QUOTA",
];

/// Bare words some functions take: FILL's fill modes, SORT's function and order.
const KEYWORDS: &[&str] = &[
    "REPEAT", "LINEAR", "AVG", "MIN", "MAX", "SUM", "ASC", "DESC",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Id(String),
    Name(String),
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    Op(BinaryOp),
    Minus,
    Plus,
}

fn syntax(message: impl Into<String>) -> MathError {
    MathError::Syntax {
        message: message.into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, MathError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let two = |a: char, b: char| c == a && next == Some(b);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let number = literal
                .parse::<f64>()
                .map_err(|_| syntax(format!("Invalid number '{literal}'.")))?;
            tokens.push(Token::Number(number));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "AND" => Token::Op(BinaryOp::And),
                "OR" => Token::Op(BinaryOp::Or),
                _ if c.is_ascii_lowercase() => Token::Id(word),
                _ if c.is_ascii_uppercase() => Token::Name(word),
                _ => {
                    return Err(syntax(format!(
                        "Invalid identifier '{word}': an Id must start with a lowercase letter."
                    )))
                }
            });
            continue;
        }
        // The User Guide itself writes METRICS(“4xx”) with typographic quotes.
        if c == '"' || c == '\u{201c}' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j] != '"' && chars[j] != '\u{201d}' {
                j += 1;
            }
            if j == chars.len() {
                return Err(syntax("Unterminated string."));
            }
            tokens.push(Token::Text(chars[start..j].iter().collect()));
            i = j + 1;
            continue;
        }
        let (token, width) = if two('=', '=') {
            (Token::Op(BinaryOp::Equal), 2)
        } else if two('!', '=') {
            (Token::Op(BinaryOp::NotEqual), 2)
        } else if two('<', '=') {
            (Token::Op(BinaryOp::LessOrEqual), 2)
        } else if two('>', '=') {
            (Token::Op(BinaryOp::GreaterOrEqual), 2)
        } else if two('&', '&') {
            (Token::Op(BinaryOp::And), 2)
        } else if two('|', '|') {
            (Token::Op(BinaryOp::Or), 2)
        } else {
            let token = match c {
                '(' => Token::LeftParen,
                ')' => Token::RightParen,
                '[' => Token::LeftBracket,
                ']' => Token::RightBracket,
                ',' => Token::Comma,
                '+' => Token::Plus,
                '-' => Token::Minus,
                '*' => Token::Op(BinaryOp::Multiply),
                '/' => Token::Op(BinaryOp::Divide),
                '^' => Token::Op(BinaryOp::Power),
                '<' => Token::Op(BinaryOp::Less),
                '>' => Token::Op(BinaryOp::Greater),
                _ => return Err(syntax(format!("Unexpected character '{c}'."))),
            };
            (token, 1)
        };
        tokens.push(token);
        i += width;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn expect(&mut self, expected: Token, what: &str) -> Result<(), MathError> {
        match self.next() {
            Some(token) if token == expected => Ok(()),
            _ => Err(syntax(format!("Expected {what}."))),
        }
    }

    fn binary_level(
        &mut self,
        ops: &[BinaryOp],
        operand: fn(&mut Parser) -> Result<Node, MathError>,
    ) -> Result<Node, MathError> {
        let mut left = operand(self)?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(op)) if ops.contains(op) => *op,
                Some(Token::Plus) if ops.contains(&BinaryOp::Add) => BinaryOp::Add,
                Some(Token::Minus) if ops.contains(&BinaryOp::Subtract) => BinaryOp::Subtract,
                _ => return Ok(left),
            };
            self.position += 1;
            let right = operand(self)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn expression(&mut self) -> Result<Node, MathError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax(format!(
                "The expression is nested more than {MAX_DEPTH} levels deep."
            )));
        }
        let node = self.binary_level(&[BinaryOp::Or], Parser::and);
        self.depth -= 1;
        node
    }

    fn and(&mut self) -> Result<Node, MathError> {
        self.binary_level(&[BinaryOp::And], Parser::comparison)
    }

    fn comparison(&mut self) -> Result<Node, MathError> {
        use BinaryOp::*;
        self.binary_level(
            &[Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual],
            Parser::additive,
        )
    }

    fn additive(&mut self) -> Result<Node, MathError> {
        self.binary_level(&[BinaryOp::Add, BinaryOp::Subtract], Parser::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Node, MathError> {
        self.binary_level(&[BinaryOp::Multiply, BinaryOp::Divide], Parser::unary)
    }

    fn unary(&mut self) -> Result<Node, MathError> {
        match self.peek() {
            Some(Token::Minus) => {
                self.position += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(syntax("Too many unary operators."));
                }
                let operand = self.unary()?;
                self.depth -= 1;
                Ok(Node::Negate(Box::new(operand)))
            }
            Some(Token::Plus) => {
                self.position += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Node, MathError> {
        let base = self.primary()?;
        if self.peek() == Some(&Token::Op(BinaryOp::Power)) {
            self.position += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(syntax("Too many chained '^' operators."));
            }
            let exponent = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Binary(
                BinaryOp::Power,
                Box::new(base),
                Box::new(exponent),
            ));
        }
        Ok(base)
    }

    fn list(&mut self, close: Token, what: &str) -> Result<Vec<Node>, MathError> {
        let mut items = Vec::new();
        if self.peek() == Some(&close) {
            self.position += 1;
            return Ok(items);
        }
        loop {
            items.push(self.expression()?);
            match self.next() {
                Some(Token::Comma) => continue,
                Some(token) if token == close => return Ok(items),
                _ => return Err(syntax(format!("Expected ',' or {what}."))),
            }
        }
    }

    fn primary(&mut self) -> Result<Node, MathError> {
        match self.next() {
            Some(Token::Number(number)) => Ok(Node::Number(number)),
            Some(Token::Text(text)) => Ok(Node::Text(text)),
            Some(Token::Id(id)) => Ok(Node::Id(id)),
            Some(Token::LeftParen) => {
                let inner = self.expression()?;
                self.expect(Token::RightParen, "')'")?;
                Ok(inner)
            }
            Some(Token::LeftBracket) => {
                let items = self.list(Token::RightBracket, "']'")?;
                if items.is_empty() {
                    return Err(syntax("An array of time series must not be empty."));
                }
                Ok(Node::Array(items))
            }
            Some(Token::Name(name)) => {
                if self.peek() != Some(&Token::LeftParen) {
                    if KEYWORDS.contains(&name.as_str()) {
                        return Ok(Node::Keyword(name));
                    }
                    return Err(MathError::UnknownKeyword { name });
                }
                self.position += 1;
                let function = match Function::from_name(&name) {
                    Some(function) => function,
                    None if UNSUPPORTED_FUNCTIONS.contains(&name.as_str()) => {
                        return Err(MathError::Unsupported { function: name })
                    }
                    None => return Err(MathError::UnknownFunction { name }),
                };
                let arguments = self.list(Token::RightParen, "')'")?;
                let (fewest, most) = function.arity();
                if arguments.len() < fewest || arguments.len() > most {
                    let expected = if fewest == most {
                        format!("{fewest}")
                    } else {
                        format!("{fewest} to {most}")
                    };
                    return Err(MathError::Arguments {
                        function: function.name(),
                        message: format!("expects {expected} arguments, got {}.", arguments.len()),
                    });
                }
                Ok(Node::Call(function, arguments))
            }
            Some(_) => Err(syntax("Unexpected token.")),
            None => Err(syntax("Unexpected end of expression.")),
        }
    }
}

pub fn parse_node(text: &str) -> Result<Node, MathError> {
    let length = text.chars().count();
    if length > MAX_EXPRESSION_LENGTH {
        return Err(MathError::ExpressionTooLong { length });
    }
    let trimmed = text.trim_start();
    // Metrics Insights queries share the Expression field (`SELECT AVG(CPUUtilization) FROM ...`).
    if trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case("SELECT") {
        return Err(MathError::Unsupported {
            function: "Metrics Insights query (SELECT)".to_string(),
        });
    }
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(syntax("The expression is empty."));
    }
    let mut parser = Parser {
        tokens,
        position: 0,
        depth: 0,
    };
    let node = parser.expression()?;
    if parser.position < parser.tokens.len() {
        return Err(syntax("Unexpected token after the end of the expression."));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let shown = match parse_node(text) {
            Ok(node) => show(&node),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(shown, expected, "parsing {text:?}");
    }

    /// A compact, fully parenthesised rendering of the tree.
    fn show(node: &Node) -> String {
        match node {
            Node::Number(n) => format!("{n}"),
            Node::Text(t) => format!("{t:?}"),
            Node::Id(id) => id.clone(),
            Node::Keyword(k) => k.clone(),
            Node::Array(items) => {
                format!(
                    "[{}]",
                    items.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            }
            Node::Negate(inner) => format!("(-{})", show(inner)),
            Node::Binary(op, l, r) => format!("({} {op:?} {})", show(l), show(r)),
            Node::Call(f, args) => format!(
                "{}({})",
                f.name(),
                args.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    #[test]
    fn parses_precedence_and_forms() {
        check("m1 + m2 * 3", "(m1 Add (m2 Multiply 3))");
        check("100 * m1 / m2", "((100 Multiply m1) Divide m2)");
        check("m1 - m2 - m3", "((m1 Subtract m2) Subtract m3)");
        check("2 ^ 3 ^ 2", "(2 Power (3 Power 2))");
        check("-2^2", "(-(2 Power 2))");
        check("-5*m1", "((-5) Multiply m1)");
        check("2^-1", "(2 Power (-1))");
        check("(m1 + m2) * 2", "((m1 Add m2) Multiply 2)");
        check(
            "m1 > 15 AND m2 > 15 || m3 == 0",
            "(((m1 Greater 15) And (m2 Greater 15)) Or (m3 Equal 0))",
        );
        check("a && b OR c", "((a And b) Or c)");
        check("m1 != 1 <= 2", "((m1 NotEqual 1) LessOrEqual 2)");
        check("SUM([m1, m2])", "SUM([m1, m2])");
        check("SUM(METRICS())", "SUM(METRICS())");
        check("METRICS(\"errors\")", "METRICS(\"errors\")");
        check("METRICS(\u{201c}4xx\u{201d})", "METRICS(\"4xx\")");
        check("FILL(m1, REPEAT)", "FILL(m1, REPEAT)");
        check(
            "SORT(METRICS(), AVG, DESC, 10)",
            "SORT(METRICS(), AVG, DESC, 10)",
        );
        check("IF(m1 < 400, m1)", "IF((m1 Less 400), m1)");
        check("1.5e3 + .5", "(1500 Add 0.5)");
        check("error_rate_2", "error_rate_2");
        check("SUM(-[m1, m2])", "SUM((-[m1, m2]))");
    }

    #[test]
    fn rejects_bad_expressions() {
        check("", "error: The expression is empty.");
        check("m1 +", "error: Unexpected end of expression.");
        check("(m1", "error: Expected ')'.");
        check(
            "m1 m2",
            "error: Unexpected token after the end of the expression.",
        );
        check("m1 % 2", "error: Unexpected character '%'.");
        check("[]", "error: An array of time series must not be empty.");
        check("METRICS(\"x", "error: Unterminated string.");
        check(
            "Errors + 1",
            "error: Unrecognized function or keyword 'Errors'.",
        );
        check("FOO(m1)", "error: Unrecognized function 'FOO'.");
        check(
            "avg(m1)",
            "error: Unexpected token after the end of the expression.",
        );
        check(
            "SEARCH('{AWS/EC2} CPUUtilization', 'Average', 300)",
            "error: Unexpected character '''.",
        );
        check(
            "SEARCH(\"{AWS/EC2} CPUUtilization\", \"Average\", 300)",
            "error: The function SEARCH is not supported by Berth.",
        );
        check(
            "ANOMALY_DETECTION_BAND(m1, 2)",
            "error: The function ANOMALY_DETECTION_BAND is not supported by Berth.",
        );
        check(
            "SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\")",
            "error: The function Metrics Insights query (SELECT) is not supported by Berth.",
        );
        check(
            "ABS(m1, m2)",
            "error: Invalid arguments for ABS: expects 1 arguments, got 2.",
        );
        check(
            "IF(m1)",
            "error: Invalid arguments for IF: expects 2 to 3 arguments, got 1.",
        );
        check(
            &"m1+".repeat(700),
            "error: The expression is 2100 characters long; the maximum is 2048.",
        );
        check(
            &format!("{}m1{}", "(".repeat(100), ")".repeat(100)),
            "error: The expression is nested more than 64 levels deep.",
        );
        check(
            &format!("{}2", "2^".repeat(100)),
            "error: Too many chained '^' operators.",
        );
        check(
            &format!("{}m1", "-".repeat(100)),
            "error: Too many unary operators.",
        );
    }
}
