//! The JSON check applied to every request before a plugin sees it and to
//! every output before a client does: syntax (serde_json), a nesting bound,
//! and no lone UTF-16 surrogate escapes.
//!
//! serde_json's syntax check over [`serde::de::IgnoredAny`] neither bounds
//! nesting nor validates `\uXXXX` surrogate pairs, and parsing into a
//! `serde_json::Value` would allocate a tree many times the size of the text.
//! So one linear pass here checks depth and escapes without allocating, and
//! serde_json checks the syntax. Pure: bytes in, verdict out.

/// Why a document is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonProblem {
    /// Arrays and objects nest deeper than the limit.
    #[error("JSON nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A `\uD800`–`\uDFFF` escape that is not half of a surrogate pair (it
    /// names no character: decoders reject it or replace it).
    #[error("JSON string has a lone UTF-16 surrogate escape at byte {at}")]
    LoneSurrogate {
        /// Byte offset of the escape.
        at: usize,
    },
    /// Not JSON at all.
    #[error("not valid JSON")]
    Invalid,
}

/// Checks `text` is one JSON value, nested at most `max_depth` deep, with
/// every `\u` surrogate escape paired.
pub fn check(text: &str, max_depth: usize) -> Result<(), JsonProblem> {
    scan(text.as_bytes(), max_depth)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|_| JsonProblem::Invalid)
}

fn scan(b: &[u8], max_depth: usize) -> Result<(), JsonProblem> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(JsonProblem::TooDeep { max: max_depth });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                i = scan_string(b, i + 1)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Scans a string body starting after its opening quote; returns the index
/// after the closing quote. Malformed strings are left to serde_json.
fn scan_string(b: &[u8], mut i: usize) -> Result<usize, JsonProblem> {
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let at = i;
                let unit = hex4(b, i + 2).ok_or(JsonProblem::Invalid)?;
                i += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = (b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u'))
                            .then(|| hex4(b, i + 2))
                            .flatten();
                        match low {
                            Some(0xDC00..=0xDFFF) => i += 6,
                            _ => return Err(JsonProblem::LoneSurrogate { at }),
                        }
                    }
                    0xDC00..=0xDFFF => return Err(JsonProblem::LoneSurrogate { at }),
                    _ => {}
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(JsonProblem::Invalid)
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = b.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_documents() {
        for ok in [
            r#"{"a":[1,2,{"b":"c"}],"d":null}"#,
            r#""\ud83d\udc4b and \u00e9 and \\u d800 and \"quote""#,
            r#"["[[[[ in a string {{{{"]"#,
            "[[[[]]]]",
            "42",
        ] {
            assert_eq!(check(ok, 4), Ok(()), "{ok}");
        }
    }

    #[test]
    fn bounds_nesting_without_recursing() {
        assert_eq!(check("[[[[[]]]]]", 4), Err(JsonProblem::TooDeep { max: 4 }));
        assert_eq!(
            check(r#"{"a":{"b":{"c":{"d":{}}}}}"#, 4),
            Err(JsonProblem::TooDeep { max: 4 })
        );
        // A million levels: refused quickly, no stack overflow.
        let deep = "[".repeat(1 << 20) + &"]".repeat(1 << 20);
        assert_eq!(check(&deep, 64), Err(JsonProblem::TooDeep { max: 64 }));
    }

    #[test]
    fn refuses_lone_surrogates() {
        for bad in [
            r#""\ud800""#,
            r#""\uD800x""#,
            r#""\udc00""#,
            r#"["ok","\ud800\u0041"]"#,
            r#"{"k\udfff":1}"#,
        ] {
            assert!(
                matches!(check(bad, 8), Err(JsonProblem::LoneSurrogate { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "{",
            r#"{"a":}"#,
            r#""unterminated"#,
            r#""\u12""#,
            "[1]]",
        ] {
            assert!(check(bad, 8).is_err(), "{bad}");
        }
    }
}
