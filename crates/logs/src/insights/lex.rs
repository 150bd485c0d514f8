//! Tokens of the Logs Insights language, with their byte spans.

use super::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name; `quoted` when written in backquotes (never a keyword then).
    Ident {
        name: String,
        quoted: bool,
    },
    Str(String),
    Regex(String),
    Num(f64),
    /// A duration literal such as `5m`, in milliseconds.
    Dur(i64),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Op(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// Whether this is the unquoted keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident { name, quoted: false } if name.eq_ignore_ascii_case(kw))
    }
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "like", "in", "as", "by", "filter", "parse", "fields", "display", "stats",
    "sort", "limit", "dedup", "asc", "desc",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '$' || c == '.'
}

/// Duration units and their length in milliseconds.
fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        _ => return None,
    })
}

/// Whether a `/` after `prev` starts a regex rather than dividing.
fn regex_allowed(tokens: &[Token]) -> bool {
    let Some(prev) = tokens.last() else {
        return true;
    };
    match &prev.tok {
        Tok::Ident { name, quoted } => {
            if !quoted && KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
                return true;
            }
            // `parse @message /re/`: a field right after the `parse` keyword.
            tokens.len() >= 2 && tokens[tokens.len() - 2].is_kw("parse")
        }
        Tok::Str(_) | Tok::Regex(_) | Tok::Num(_) | Tok::Dur(_) | Tok::RParen | Tok::RBrack => {
            false
        }
        _ => true,
    }
}

pub(crate) fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let pos = |i: usize| chars.get(i).map_or(text.len(), |&(p, _)| p);
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        let start = pos(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
            continue;
        }
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '[' => {
                i += 1;
                Tok::LBrack
            }
            ']' => {
                i += 1;
                Tok::RBrack
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match at(i) {
                        None => {
                            return Err(QueryError::at(
                                text,
                                "unterminated string literal",
                                start,
                                text.len(),
                            ))
                        }
                        Some(ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match at(i + 1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some(e @ ('\\' | '"' | '\'')) => s.push(e),
                                Some(e) => {
                                    s.push('\\');
                                    s.push(e);
                                }
                                None => s.push('\\'),
                            }
                            i += 2;
                        }
                        Some(ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Tok::Str(s)
            }
            '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match at(i) {
                        None => {
                            return Err(QueryError::at(
                                text,
                                "unterminated backquoted field name",
                                start,
                                text.len(),
                            ))
                        }
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Tok::Ident {
                    name: s,
                    quoted: true,
                }
            }
            '/' if regex_allowed(&tokens) => {
                let mut s = String::new();
                i += 1;
                loop {
                    match at(i) {
                        None => {
                            return Err(QueryError::at(
                                text,
                                "unterminated regular expression",
                                start,
                                text.len(),
                            ))
                        }
                        Some('/') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if at(i + 1) == Some('/') => {
                            s.push('/');
                            i += 2;
                        }
                        Some(ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Tok::Regex(s)
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while at(j).is_some_and(|c| c.is_ascii_digit()) {
                    j += 1;
                }
                if at(j) == Some('.') && at(j + 1).is_some_and(|c| c.is_ascii_digit()) {
                    j += 1;
                    while at(j).is_some_and(|c| c.is_ascii_digit()) {
                        j += 1;
                    }
                }
                let num_text = &text[start..pos(j)];
                let mut k = j;
                while at(k).is_some_and(|c| c.is_ascii_alphabetic()) {
                    k += 1;
                }
                let value: f64 = num_text.parse().map_err(|_| {
                    QueryError::at(text, format!("invalid number {num_text}"), start, pos(j))
                })?;
                if k > j {
                    let unit = &text[pos(j)..pos(k)];
                    let Some(ms) = unit_ms(unit) else {
                        return Err(QueryError::at(
                            text,
                            format!("invalid time unit {unit} in {}", &text[start..pos(k)]),
                            start,
                            pos(k),
                        ));
                    };
                    i = k;
                    Tok::Dur((value * ms as f64) as i64)
                } else {
                    i = j;
                    Tok::Num(value)
                }
            }
            c if is_ident_start(c) => {
                let mut j = i + 1;
                while at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                i = j;
                Tok::Ident {
                    name: text[start..pos(j)].to_string(),
                    quoted: false,
                }
            }
            _ => {
                let next = at(i + 1);
                let (op, len): (&'static str, usize) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('=', Some('~')) => ("=~", 2),
                    ('=', Some('=')) => ("=", 2),
                    ('=', _) => ("=", 1),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    ('+', _) => ("+", 1),
                    ('-', _) => ("-", 1),
                    ('*', _) => ("*", 1),
                    ('/', _) => ("/", 1),
                    ('%', _) => ("%", 1),
                    ('^', _) => ("^", 1),
                    _ => {
                        return Err(QueryError::at(
                            text,
                            format!("unexpected symbol found {c}"),
                            start,
                            pos(i + 1),
                        ))
                    }
                };
                i += len;
                Tok::Op(op)
            }
        };
        tokens.push(Token {
            tok,
            start,
            end: pos(i),
        });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        start: text.len(),
        end: text.len(),
    });
    Ok(tokens)
}
