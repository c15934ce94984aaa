//! What one `inference.embed` call may carry, defined once for both sides of
//! the WIT interface: the host's inference engine takes its default limits
//! from here, and plugins split their texts with [`calls`] so that no call is
//! refused.
//!
//! The token budget is what one core embeds well within the default 2 s
//! request deadline (all-MiniLM-L6-v2 with tract; `docs/models.md`). A
//! plugin cannot tokenize, so [`calls`] bounds each text's tokens from
//! above: WordPiece gives at most one token per byte plus `[CLS]` and
//! `[SEP]`, and the model truncates at [`MAX_TOKENS_PER_TEXT`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::ops::Range;

/// Most texts in one call.
pub const MAX_TEXTS_PER_CALL: usize = 256;

/// Most tokens in one call, all texts together. Measured on one core
/// (2026-12-03, the test build, tract): 4 texts of 256 tokens take 0.49 s,
/// 16 take 2.15 s (so 12 take about 1.6 s); 192 chat lines (~2 900 tokens) 1.1 s.
pub const MAX_TOKENS_PER_CALL: usize = 3072;

/// Tokens a text is truncated to by the model (sentence-transformers'
/// `max_seq_length` for all-MiniLM-L6-v2).
pub const MAX_TOKENS_PER_TEXT: usize = 256;

/// An upper bound on the tokens `text` becomes.
pub fn token_bound(text: &str) -> usize {
    text.len().saturating_add(2).min(MAX_TOKENS_PER_TEXT)
}

/// Splits `texts` into consecutive ranges, each a call the host accepts
/// under the default limits: at most [`MAX_TEXTS_PER_CALL`] texts whose
/// [`token_bound`]s sum to at most [`MAX_TOKENS_PER_CALL`]. Every text is in
/// exactly one range, in order; no range is empty.
pub fn calls(texts: &[String]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, text) in texts.iter().enumerate() {
        let t = token_bound(text);
        if i > start && (i - start >= MAX_TEXTS_PER_CALL || tokens + t > MAX_TOKENS_PER_CALL) {
            out.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += t;
    }
    if start < texts.len() {
        out.push(start..texts.len());
    }
    out
}

/// Embeds `texts` with as many calls of `embed` as [`calls`] needs (one for
/// an ordinary request), concatenating the vectors in order.
pub fn embed_in_calls<E>(
    texts: &[String],
    mut embed: impl FnMut(&[String]) -> Result<Vec<Vec<f32>>, E>,
) -> Result<Vec<Vec<f32>>, E> {
    let mut out = Vec::with_capacity(texts.len());
    for range in calls(texts) {
        out.extend(embed(&texts[range])?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lens: &[usize]) -> Vec<String> {
        lens.iter().map(|&n| "a".repeat(n)).collect()
    }

    #[test]
    fn short_threads_are_one_call() {
        assert_eq!(calls(&texts(&[10; 192])), vec![0..192]);
        assert!(calls(&[]).is_empty());
    }

    #[test]
    fn long_texts_are_split_within_the_token_budget() {
        let t = texts(&[1000; 40]);
        let ranges = calls(&t);
        assert_eq!(ranges, vec![0..12, 12..24, 24..36, 36..40]);
        for r in &ranges {
            let sum: usize = t[r.clone()].iter().map(|s| token_bound(s)).sum();
            assert!(sum <= MAX_TOKENS_PER_CALL);
        }
    }

    #[test]
    fn many_short_texts_are_split_by_count() {
        let ranges = calls(&texts(&[1; 600]));
        assert_eq!(ranges, vec![0..256, 256..512, 512..600]);
    }

    #[test]
    fn embed_in_calls_keeps_order_and_stops_at_the_first_error() {
        let t = texts(&[1000; 30]);
        let mut sizes = Vec::new();
        let out = embed_in_calls(&t, |chunk| {
            sizes.push(chunk.len());
            Ok::<_, ()>(chunk.iter().map(|s| vec![s.len() as f32]).collect())
        })
        .unwrap();
        assert_eq!(sizes, [12, 12, 6]);
        assert_eq!(out.len(), 30);
        let mut n = 0;
        let err = embed_in_calls(&t, |_| {
            n += 1;
            Err::<Vec<Vec<f32>>, _>("refused")
        });
        assert_eq!((err, n), (Err("refused"), 1));
    }

    #[test]
    fn bound_counts_cls_and_sep_and_truncation() {
        assert_eq!(token_bound(""), 2);
        assert_eq!(token_bound("héllo"), 8);
        assert_eq!(token_bound(&"x".repeat(5000)), 256);
    }
}
