//! ALB's wildcard patterns: `*` matches any run of characters (also none),
//! `?` exactly one character, everything else itself.

/// Whether `text` matches `pattern` entirely. `case_insensitive` folds case
/// (host-header, http-header values and query strings on ALB);
/// path-pattern is case-sensitive.
pub fn wildcard_match(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let pattern_bytes = pattern.as_bytes();
    let (mut pattern_index, mut text_index) = (0usize, 0usize);
    // Where the last `*` was seen: the pattern index after it and the text
    // index it currently stands for the end of.
    let mut last_star: Option<(usize, usize)> = None;
    while text_index < text.len() {
        if pattern_bytes.get(pattern_index) == Some(&b'*') {
            pattern_index += 1;
            last_star = Some((pattern_index, text_index));
            continue;
        }
        let text_char = char_at(text, text_index);
        if pattern_index < pattern.len() {
            let pattern_char = char_at(pattern, pattern_index);
            if pattern_char == '?' || chars_equal(pattern_char, text_char, case_insensitive) {
                pattern_index += pattern_char.len_utf8();
                text_index += text_char.len_utf8();
                continue;
            }
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
    pattern_bytes[pattern_index..]
        .iter()
        .all(|&byte| byte == b'*')
}

fn char_at(text: &str, index: usize) -> char {
    text[index..].chars().next().unwrap_or('\0')
}

fn chars_equal(a: char, b: char, case_insensitive: bool) -> bool {
    a == b || (case_insensitive && a.to_lowercase().eq(b.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

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
