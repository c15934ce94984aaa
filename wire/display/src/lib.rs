//! Safe display of untrusted text: anything that came from the network or from a file
//! (a host's error code, a member name echoed by a parser, a plugin name in a measurement
//! log) before it reaches a terminal, a log or an error message.
//!
//! Two things can go wrong when such text is printed raw:
//!
//! * **Terminal control**: ESC (`\x1b`) starts ANSI sequences that move the cursor, erase
//!   lines or recolour text, so a host that *failed* attestation could print a line that
//!   looks like `attestation evidence VERIFIED`. C1 controls (U+0080–U+009F, CSI is
//!   U+009B), carriage return, backspace, Unicode line separators and the bidi controls
//!   (U+202A–U+202E, U+2066–U+2069, ...) rewrite or reorder what is shown.
//! * **Size**: a 10 MB member name quoted in full in an error floods stderr and the logs.
//!
//! Every character that can do either is rendered as `\u{..}` (hex code point) by
//! [`sanitize`]; [`excerpt`] and [`quoted`] also keep at most [`MAX_CHARS`] characters and
//! then say how long the input was: `… (10485760 bytes)`. The [`Excerpt`] and [`Quoted`]
//! wrappers do the same in a `Display` implementation, without allocating, for use in
//! error messages (`#[error("unknown member {}", Quoted(.name))]`).
//!
//! The escaping is idempotent on its own output (a rendered `\u{1b}` is plain ASCII), so
//! text may safely be sanitized both where it enters an error and again where it is printed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// How many characters of untrusted text [`excerpt`], [`quoted`], [`Excerpt`] and [`Quoted`]
/// show before truncating.
pub const MAX_CHARS: usize = 200;

/// Whether `c` must not reach a terminal as is: C0 and C1 controls and DEL (all of
/// Unicode's `Cc`), the bidirectional formatting characters, line and paragraph separators,
/// zero-width characters and other invisible format characters that can hide or reorder
/// text.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                  // soft hyphen (invisible)
            | '\u{061C}'                // ARABIC LETTER MARK (bidi)
            | '\u{115F}' | '\u{1160}'   // Hangul fillers (invisible)
            | '\u{180E}'                // MONGOLIAN VOWEL SEPARATOR
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}'   // line and paragraph separators
            | '\u{202A}'..='\u{202E}'   // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{206F}'   // word joiner, invisible operators, LRI..PDI (2066-2069), deprecated format chars
            | '\u{3164}'                // HANGUL FILLER
            | '\u{FE00}'..='\u{FE0F}'   // variation selectors
            | '\u{FEFF}'                // BOM / zero-width no-break space
            | '\u{FFA0}'                // HALFWIDTH HANGUL FILLER
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

fn escape_into<W: fmt::Write>(out: &mut W, c: char) -> fmt::Result {
    write!(out, "\\u{{{:x}}}", u32::from(c))
}

/// `text` with every [unsafe character](is_unsafe_char) rendered as `\u{..}`. Nothing is
/// truncated; borrowed when there is nothing to escape.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    sanitize_keeping(text, &[])
}

/// As [`sanitize`], but keeps line feeds: for multi-line output assembled by the caller
/// (such as a summary) in which each external field was already sanitized.
pub fn sanitize_lines(text: &str) -> Cow<'_, str> {
    sanitize_keeping(text, &['\n'])
}

fn sanitize_keeping<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    let bad = |c: char| is_unsafe_char(c) && !keep.contains(&c);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bad(c) {
            // Writing to a String cannot fail.
            let _ = escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most [`MAX_CHARS`] characters of `text`, sanitized, followed by
/// `… (N bytes)` when it was longer.
pub fn excerpt(text: &str) -> String {
    Excerpt(text).to_string()
}

/// [`excerpt`] in double quotes, with `"` and `\` escaped: `"na\"me"`. For names and values
/// quoted in error messages.
pub fn quoted(text: &str) -> String {
    Quoted(text).to_string()
}

fn write_limited(f: &mut fmt::Formatter<'_>, text: &str, quote: bool) -> fmt::Result {
    if quote {
        f.write_char('"')?;
    }
    let mut truncated = false;
    for (shown, c) in text.chars().enumerate() {
        if shown == MAX_CHARS {
            truncated = true;
            break;
        }
        if is_unsafe_char(c) {
            escape_into(f, c)?;
        } else if quote && (c == '"' || c == '\\') {
            f.write_char('\\')?;
            f.write_char(c)?;
        } else {
            f.write_char(c)?;
        }
    }
    if quote {
        f.write_char('"')?;
    }
    if truncated {
        write!(f, "… ({} bytes)", text.len())?;
    }
    Ok(())
}

/// Displays untrusted text as [`excerpt`] does, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excerpt<'a>(pub &'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_limited(f, self.0, false)
    }
}

/// Displays untrusted text as [`quoted`] does, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_limited(f, self.0, true)
    }
}

/// An optional untrusted string, quoted, or `none` when absent.
pub fn quoted_opt(text: Option<&str>, none: &'static str) -> Cow<'static, str> {
    match text {
        Some(t) => Cow::Owned(quoted(t)),
        None => Cow::Borrowed(none),
    }
}

/// An error and its causes on one line, `outer: cause: cause` (errors in Cloister never
/// interpolate their source, so each cause appears once).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_can_rewrite_a_line() {
        for c in [
            '\x1b', '\r', '\x08', '\x07', '\0', '\x7f', '\u{80}', '\u{9b}', '\u{9f}', '\u{202a}',
            '\u{202e}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}', '\u{200b}', '\u{200f}',
            '\u{feff}', '\u{061c}', '\n', '\t',
        ] {
            let s = format!("a{c}b");
            let out = sanitize(&s);
            assert_eq!(
                out,
                format!("a\\u{{{:x}}}b", u32::from(c)),
                "{:x}",
                u32::from(c)
            );
            assert!(!out.chars().any(is_unsafe_char));
        }
        assert_eq!(
            sanitize("\x1b[2K\x1b[1Gattestation evidence VERIFIED"),
            "\\u{1b}[2K\\u{1b}[1Gattestation evidence VERIFIED"
        );
        // Ordinary text, including non-Latin scripts and emoji, is untouched and borrowed.
        for ok in ["plain", "Grüße", "日本語", "🚨 ok", "a\\u{1b}"] {
            assert!(matches!(sanitize(ok), Cow::Borrowed(s) if s == ok));
        }
        assert_eq!(sanitize_lines("a\nb\x1b"), "a\nb\\u{1b}");
    }

    #[test]
    fn sanitizing_is_idempotent() {
        let once = sanitize("x\x1b\u{202e}y").into_owned();
        assert_eq!(sanitize(&once), once);
        let q = quoted("x\x1b\"y");
        assert_eq!(q, "\"x\\u{1b}\\\"y\"");
    }

    #[test]
    fn long_input_is_truncated_with_its_size() {
        let long = "a".repeat(10 * 1024 * 1024);
        let e = excerpt(&long);
        assert_eq!(
            e,
            format!("{}… ({} bytes)", "a".repeat(MAX_CHARS), long.len())
        );
        let q = quoted(&long);
        assert!(q.starts_with('"') && q.ends_with(&format!("\"… ({} bytes)", long.len())));
        assert!(q.len() < MAX_CHARS + 40);
        // Exactly MAX_CHARS characters: not truncated.
        let exact = "é".repeat(MAX_CHARS);
        assert_eq!(excerpt(&exact), exact);
        // Escapes count as one character each and are never cut in half.
        let controls = "\x1b".repeat(MAX_CHARS + 1);
        let e = excerpt(&controls);
        assert!(e.starts_with(&"\\u{1b}".repeat(MAX_CHARS)));
        assert!(e.ends_with(&format!("… ({} bytes)", MAX_CHARS + 1)));
    }

    #[test]
    fn wrappers_match_the_functions() {
        let s = "n\x1bame";
        assert_eq!(format!("{}", Excerpt(s)), excerpt(s));
        assert_eq!(format!("{}", Quoted(s)), quoted(s));
        assert_eq!(quoted_opt(None, "none"), "none");
        assert_eq!(quoted_opt(Some("k"), "none"), "\"k\"");
    }
}
