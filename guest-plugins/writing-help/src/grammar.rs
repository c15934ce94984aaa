//! Grammar, spelling and style checks with harper-core, compiled in.
//!
//! Building harper's dictionary and its curated linter group takes ~1.4 s in
//! a fresh instance. [`init`] does it once, at build time, inside
//! `wizer-initialize`; the snapshot's memory then already holds the state, and
//! every request starts from it.

use crate::{Kind, Suggestion};
use harper_core::linting::{Lint, LintGroup, LintKind, Suggestion as Fix};
use harper_core::spell::FstDictionary;
use harper_core::{Dialect, Document, TokenStringExt as _};
use std::sync::Mutex;

/// The linter group, built once (by `wizer-initialize` at build time).
static LINTER: Mutex<Option<LintGroup>> = Mutex::new(None);

/// A text exercising the dictionary, the fuzzy spelling search and the
/// linters, so that the lazily built parts of harper (automata, caches) are
/// built before the snapshot rather than in every request.
const WARM_UP: &str = "This is an sentence with a mispelled wrod, and their is more. \
    I could of gone their yesterday, but it's raining alot. Its a nice day! \
    She dont know what they is doing; we was late. Recieve the the package. \
    \"Quotes\" and numbers like 1st, 2nd, 3th and 4.5% also appear here.";

/// Builds the dictionary and the linter group, and runs them once.
pub fn init() {
    let mut guard = lock();
    let linter = guard.get_or_insert_with(new_linter);
    let doc = Document::new_plain_english_curated(WARM_UP);
    let _ = linter.organized_lints(&doc);
    // Sentence iteration is used per request too.
    let _ = doc.iter_sentences().count();
}

fn new_linter() -> LintGroup {
    LintGroup::new_curated(FstDictionary::curated(), Dialect::American)
}

fn lock() -> std::sync::MutexGuard<'static, Option<LintGroup>> {
    // A poisoned lock cannot happen (panics abort), but never panic here.
    LINTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Maps harper's lint categories onto the three this feature reports.
pub fn kind_of(kind: LintKind) -> Kind {
    match kind {
        LintKind::Spelling | LintKind::Typo => Kind::Spelling,
        LintKind::Agreement
        | LintKind::BoundaryError
        | LintKind::Capitalization
        | LintKind::Eggcorn
        | LintKind::Grammar
        | LintKind::Malapropism
        // harper files many plain corrections here (a/an, then/than,
        // double modals, number suffixes): they are errors, not style.
        | LintKind::Miscellaneous
        | LintKind::Nonstandard
        | LintKind::Punctuation
        | LintKind::Repetition
        | LintKind::Usage
        | LintKind::WordChoice
        | LintKind::WordOrder => Kind::Grammar,
        LintKind::Enhancement
        | LintKind::Formatting
        | LintKind::Readability
        | LintKind::Redundancy
        | LintKind::Regionalism
        | LintKind::Style => Kind::Style,
    }
}

/// Most replacements offered for one suggestion.
const MAX_REPLACEMENTS: usize = 5;

/// Lints `doc` and returns non-overlapping suggestions in text order. Spans
/// are in Unicode scalar values of the document's source.
pub fn check(doc: &Document) -> Vec<Suggestion> {
    let mut guard = lock();
    let linter = guard.get_or_insert_with(new_linter);
    let source = doc.get_source();
    let mut found: Vec<(String, Lint)> = linter
        .organized_lints(doc)
        .into_iter()
        .flat_map(|(rule, lints)| lints.into_iter().map(move |l| (rule.clone(), l)))
        .filter(|(_, l)| l.span.start < l.span.end && l.span.end <= source.len())
        .collect();
    // Earliest first; of two starting together the longer; of two on the
    // same span a spelling lint first (a misspelled word is reported as
    // such, not as the word it happens to resemble), then the more important
    // (lower priority value); then by rule for a stable order.
    let rank = |k: LintKind| match kind_of(k) {
        Kind::Spelling => 0u8,
        Kind::Grammar => 1,
        Kind::Style | Kind::Tone => 2,
    };
    found.sort_by(|(ra, a), (rb, b)| {
        (
            a.span.start,
            std::cmp::Reverse(a.span.end),
            rank(a.lint_kind),
            a.priority,
            ra,
        )
            .cmp(&(
                b.span.start,
                std::cmp::Reverse(b.span.end),
                rank(b.lint_kind),
                b.priority,
                rb,
            ))
    });
    let mut out = Vec::with_capacity(found.len());
    let mut covered_to = 0;
    for (rule, lint) in found {
        if lint.span.start < covered_to {
            continue;
        }
        covered_to = lint.span.end;
        let original: String = source[lint.span.start..lint.span.end].iter().collect();
        let mut replacements: Vec<String> = Vec::new();
        for fix in &lint.suggestions {
            let r = match fix {
                Fix::ReplaceWith(chars) => chars.iter().collect(),
                Fix::InsertAfter(chars) => {
                    let mut s = original.clone();
                    s.extend(chars.iter());
                    s
                }
                Fix::Remove => String::new(),
            };
            if r != original && !replacements.contains(&r) {
                replacements.push(r);
            }
            if replacements.len() == MAX_REPLACEMENTS {
                break;
            }
        }
        let kind = kind_of(lint.lint_kind);
        // A grammar complaint with nothing to put instead is noise ("missing
        // preposition" on "The weather is nice today").
        if kind == Kind::Grammar && replacements.is_empty() {
            continue;
        }
        // A capitalized word inside a sentence that the dictionary does not
        // know is most likely a name ("Novak"): never "correct" it.
        if kind == Kind::Spelling && is_name_like(source, lint.span.start, lint.span.end) {
            continue;
        }
        out.push(Suggestion {
            start: lint.span.start,
            end: lint.span.end,
            kind,
            rule,
            message: lint.message,
            replacements,
        });
    }
    out
}

/// Is `source[start..end]` a capitalized word that does not open a sentence
/// (the text's start, or after `.`, `!`, `?` or a line break, skipping spaces
/// and opening quotes or brackets)?
fn is_name_like(source: &[char], start: usize, end: usize) -> bool {
    let Some(first) = source.get(start) else {
        return false;
    };
    if !first.is_uppercase() || end <= start {
        return false;
    }
    // Spaces (not line breaks) and opening quotes or brackets are skipped.
    let skipped = |c: char| {
        (c.is_whitespace() && c != '\n') || matches!(c, '"' | '\'' | '(' | '[' | '“' | '‘')
    };
    let Some(at) = source[..start].iter().rposition(|&c| !skipped(c)) else {
        return false;
    };
    match source[at] {
        // "Mr. Okonkwo": a title's period does not end the sentence.
        '.' => {
            let word_start = source[..at]
                .iter()
                .rposition(|c| !c.is_alphabetic())
                .map_or(0, |i| i + 1);
            let word: String = source[word_start..at].iter().collect();
            TITLES.contains(&word.as_str())
        }
        '!' | '?' | '\n' | ':' => false,
        _ => true,
    }
}

/// Titles written with a period before a name.
const TITLES: &[&str] = &[
    "Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "St", "Sr", "Jr", "Rev", "Hon",
];

/// Abbreviations (written without their final period) that never end a
/// sentence: "e.g." and "i.e." are followed by more of it.
const NEVER_FINAL: &[&str] = &["e.g", "i.e", "cf", "vs"];

/// Whether `text` ends with a title ("Ms.") or an abbreviation that does not
/// end a sentence ("e.g."), so that the next sentence belongs to it.
fn ends_with_abbreviation(text: &[char]) -> bool {
    let Some((&'.', rest)) = text.split_last() else {
        return false;
    };
    let word_start = rest
        .iter()
        .rposition(|c| c.is_whitespace() || matches!(c, '(' | '"' | '\'' | '“' | '‘'))
        .map_or(0, |i| i + 1);
    let word: String = rest[word_start..].iter().collect();
    TITLES.contains(&word.as_str()) || NEVER_FINAL.contains(&word.to_lowercase().as_str())
}

/// The sentences of `doc` as spans (Unicode scalar values), trimmed of
/// surrounding whitespace, in order; empty ones are skipped. A sentence that
/// ends with a title or an abbreviation ("Dear Ms." + "Novak, …") is joined
/// with the next one: tone suggestions and rewrites never split at it.
pub fn sentences(doc: &Document) -> Vec<(usize, usize)> {
    let source = doc.get_source();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (s, e) in split_sentences(doc) {
        match out.last_mut() {
            Some(last) if ends_with_abbreviation(&source[last.0..last.1]) => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    out
}

fn split_sentences(doc: &Document) -> Vec<(usize, usize)> {
    let source = doc.get_source();
    doc.iter_sentences()
        .filter_map(|tokens| tokens.span())
        .filter_map(|span| {
            let (mut s, mut e) = (span.start.min(source.len()), span.end.min(source.len()));
            while s < e && source[s].is_whitespace() {
                s += 1;
            }
            while e > s && source[e - 1].is_whitespace() {
                e -= 1;
            }
            (s < e).then_some((s, e))
        })
        .collect()
}
