//! ALB's wildcard patterns: `*` matches any run of characters (also none),
//! `?` exactly one character, everything else itself.

/// Whether `text` matches `pattern` entirely. `case_insensitive` folds case
/// (host-header, http-header values and query strings on ALB);
/// path-pattern is case-sensitive.
pub fn wildcard_match(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    matches(pattern, text, case_insensitive, false)
}

/// A query string condition's key or value against the request's: wildcards,
/// case-insensitive, and `\*` / `\?` stand for a literal `*` / `?` (ALB's
/// escapes for query strings; `\\` is a backslash).
pub fn query_string_match(pattern: &str, text: &str) -> bool {
    matches(pattern, text, true, true)
}

#[derive(Clone, Copy)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    AnyChar,
    Literal(char),
}

/// The token at byte `index` of `pattern` and its width in bytes.
fn token_at(pattern: &str, index: usize, escapes: bool) -> Option<(Token, usize)> {
    let c = pattern[index..].chars().next()?;
    Some(match c {
        '*' => (Token::Star, 1),
        '?' => (Token::AnyChar, 1),
        '\\' if escapes => match pattern[index + 1..].chars().next() {
            Some(escaped) => (Token::Literal(escaped), 1 + escaped.len_utf8()),
            None => (Token::Literal('\\'), 1),
        },
        other => (Token::Literal(other), other.len_utf8()),
    })
}

fn matches(pattern: &str, text: &str, case_insensitive: bool, escapes: bool) -> bool {
    let (mut pattern_index, mut text_index) = (0usize, 0usize);
    // Where the last `*` was seen: the pattern index after it and the text
    // index it currently stands for the end of.
    let mut last_star: Option<(usize, usize)> = None;
    while text_index < text.len() {
        let token = token_at(pattern, pattern_index, escapes);
        if let Some((Token::Star, width)) = token {
            pattern_index += width;
            last_star = Some((pattern_index, text_index));
            continue;
        }
        let text_char = char_at(text, text_index);
        let consumed = match token {
            Some((Token::AnyChar, width)) => Some(width),
            Some((Token::Literal(pattern_char), width))
                if chars_equal(pattern_char, text_char, case_insensitive) =>
            {
                Some(width)
            }
            _ => None,
        };
        if let Some(width) = consumed {
            pattern_index += width;
            text_index += text_char.len_utf8();
            continue;
        }
        match last_star {
            Some((after_star, star_text_index)) => {
                let next = star_text_index + char_at(text, star_text_index).len_utf8();
                last_star = Some((after_star, next));
                pattern_index = after_star;
                text_index = next;
            }
            None => return false,
        }
    }
    // What is left of the pattern must match the empty string: only stars.
    while let Some((token, width)) = token_at(pattern, pattern_index, escapes) {
        if !matches!(token, Token::Star) {
            return false;
        }
        pattern_index += width;
    }
    true
}

fn char_at(text: &str, index: usize) -> char {
    text[index..].chars().next().unwrap_or('\0')
}

fn chars_equal(a: char, b: char, case_insensitive: bool) -> bool {
    a == b || (case_insensitive && a.to_lowercase().eq(b.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::{query_string_match, wildcard_match};

    fn check(pattern: &str, text: &str, case_insensitive: bool, expected: bool) {
        assert_eq!(
            wildcard_match(pattern, text, case_insensitive),
            expected,
            "pattern {pattern:?} text {text:?} case_insensitive {case_insensitive}"
        );
    }

    #[test]
    fn wildcards() {
        for (pattern, text, case_insensitive, expected) in [
            ("/api/*", "/api/users", false, true),
            ("/api/*", "/api/", false, true),
            ("/api/*", "/api", false, false),
            ("/api*", "/api", false, true),
            ("*", "", false, true),
            ("", "", false, true),
            ("", "/", false, false),
            ("/img/*.png", "/img/a/b.png", false, true),
            ("/img/*.png", "/img/a/b.jpg", false, false),
            ("/v?/x", "/v1/x", false, true),
            ("/v?/x", "/v10/x", false, false),
            ("/v?/x", "/vé/x", false, true),
            ("/API/*", "/api/x", false, false),
            ("*.example.com", "WWW.Example.COM", true, true),
            ("*.example.com", "example.com", true, false),
            ("a*b*c", "aXbYc", false, true),
            ("a*b*c", "aXbY", false, false),
            ("**x", "abcx", false, true),
            ("a*a*a", "aaaa", false, true),
        ] {
            check(pattern, text, case_insensitive, expected);
        }
    }

    #[test]
    fn query_strings_escape_wildcards() {
        for (pattern, text, expected) in [
            (r"a\*b", "a*b", true),
            (r"a\*b", "axb", false),
            (r"\?", "?", true),
            (r"\?", "x", false),
            (r"v\\?", "v\\1", true),
            ("*Beta*", "xbetay", true),
            (r"100\%", "100\\%", false),
            ("end\\", "end\\", true),
        ] {
            assert_eq!(
                query_string_match(pattern, text),
                expected,
                "pattern {pattern:?} text {text:?}"
            );
        }
        // Without escapes a backslash is an ordinary character.
        assert!(wildcard_match(r"a\*", r"a\bc", false));
    }

    proptest::proptest! {
        #[test]
        fn a_literal_matches_itself_and_star_matches_everything(text in "[a-zA-Z0-9/._-]{0,24}") {
            proptest::prop_assert!(wildcard_match(&text, &text, false));
            proptest::prop_assert!(wildcard_match("*", &text, false));
            let prefix: String = text.chars().take(3).collect();
            let prefix_pattern = format!("{prefix}*");
            proptest::prop_assert!(wildcard_match(&prefix_pattern, &text, false));
        }
    }
}
