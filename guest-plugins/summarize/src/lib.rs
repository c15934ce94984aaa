//! `summarize`: extractive summaries of chat threads.
//!
//! Input: a chat thread (`[{sender, text, time?}]`) and options (`length`,
//! `since`). Output: bullets in chronological order, each with its senders
//! and the indices of the messages it comes from, plus the questions and
//! requests that nobody answered. The schema and the algorithm are
//! documented in `docs/features.md`.
//!
//! The algorithm is pure Rust over an [`Embed`] implementation, so it builds
//! and is unit-tested natively; the WIT glue (module `component`) exists only
//! on wasm32, where [`Embed`] is the host's `inference.embed`.
//!
//! 1. Each message is split into its own text and quoted lines (`> …`);
//!    code blocks are dropped; the own text is cut into sentence-like
//!    segments (punctuation, line breaks, emoji between phrases, soft
//!    boundaries in long unpunctuated runs). URLs are kept in the text shown
//!    and reduced to their host for the model; emoji are removed for the
//!    model and trimmed from the ends of the text shown.
//! 2. All segments of messages `since..` are embedded in one batch.
//! 3. Segments with content (not just "ok lol thanks") are the candidates.
//!    Their relevance is LexRank centrality on the cosine graph times an
//!    informativeness factor (content words, digits, links).
//! 4. Maximal marginal relevance picks a length-appropriate number of
//!    them, never two near-duplicates; near-duplicates of a picked segment are
//!    merged into its bullet (senders and message indices).
//! 5. Bullets are ordered chronologically. Questions and requests are
//!    detected and checked against later replies (`questions`).
// The algorithm has no `unsafe`; only the generated WIT glue needs it.
#![deny(unsafe_code)]

pub mod input;
pub mod questions;
pub mod rank;
pub mod salience;
pub mod text;

use input::{Length, Request};
use serde::Serialize;

/// The one model this plugin uses.
pub const MODEL: &str = "all-minilm-l6-v2";
/// Texts per `inference.embed` call: the host's default `max_texts` (its
/// backend refuses larger batches). Longer lists would be sent in consecutive
/// calls of this size; with [`MAX_EMBEDDED_SEGMENTS`] below it, every request
/// makes exactly one call.
pub const MAX_TEXTS_PER_CALL: usize = 256;
/// Segments embedded per request at most, which keeps the request within
/// the host's deadline: embedding costs ~16 ms per segment (≤ 36 words) on
/// the 2-core reference machine, and 192 segments took a 100-message thread
/// to 1.9 s and longer ones past the 2 s deadline (`docs/performance.md`,
/// "Big inputs"); 64 keeps the model under ~1.1 s. Beyond it, the most
/// informative segments of each stretch of the thread are read
/// ([`spread_pick`]: 4 per window) and the output says how much was read
/// (`coverage`). Long threads are better summarized with `since`.
pub const MAX_EMBEDDED_SEGMENTS: usize = 64;
/// Cosine at or above which two segments say the same thing: MMR never
/// picks both, and the second is merged into the first's bullet.
pub const NEAR_DUPLICATE: f32 = 0.8;
/// MMR's trade-off between relevance (1) and novelty (0).
pub const MMR_LAMBDA: f32 = 0.7;
/// Share of a segment's relevance that does not depend on its centrality: a
/// point said once ("no campfire, fire ban") is not central, yet a summary
/// must keep it when its wording makes it salient.
pub const CENTRALITY_FLOOR: f32 = 0.6;
/// How much the salience cues ([`salience`]) raise a segment's relevance: a
/// segment with three kinds of cue counts `1 + SALIENCE_WEIGHT` times as much.
pub const SALIENCE_WEIGHT: f32 = 0.8;

/// Sentence embeddings, as the host provides them.
pub trait Embed {
    /// One vector per text, in order. The error is a short explanation.
    fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String>;
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is malformed; the message names the field.
    InvalidInput(String),
    /// The host's inference failed.
    Inference(String),
    /// The host returned something unusable.
    Internal(String),
}

/// A summary, as serialized to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Key points in chronological order.
    pub bullets: Vec<Bullet>,
    /// Unanswered questions and requests, in order.
    pub open_questions: Vec<OpenQuestion>,
    /// The embedding model used.
    pub model: &'static str,
    /// Present when the thread had more candidate sentences than one request
    /// embeds: how many there were and how many were summarized (picked
    /// across the whole thread, [`spread_pick`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// How much of a long thread a summary read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Candidate sentences in the thread (messages `since..`).
    pub sentences: usize,
    /// How many of them were read (at most [`MAX_EMBEDDED_SEGMENTS`]).
    pub read: usize,
}

/// Windows a long thread is cut into for [`spread_pick`].
pub const COVERAGE_WINDOWS: usize = 16;

/// Picks `max` of `scores.len()` items, spread over the whole list: the list
/// is cut into [`COVERAGE_WINDOWS`] consecutive windows of equal length, each
/// gets an equal share of `max`, and each window keeps its highest-scoring
/// items (earlier first on ties). So a long thread is read from start to
/// end, not only where it is densest. Returns a keep-flag per item.
pub fn spread_pick(scores: &[usize], max: usize) -> Vec<bool> {
    let n = scores.len();
    if n <= max {
        return vec![true; n];
    }
    let windows = COVERAGE_WINDOWS.min(max.max(1));
    let mut keep = vec![false; n];
    for w in 0..windows {
        let range = w * n / windows..(w + 1) * n / windows;
        let quota = max / windows + usize::from(w < max % windows);
        let mut order: Vec<usize> = range.collect();
        order.sort_by_key(|&i| std::cmp::Reverse(scores[i]));
        for &i in order.iter().take(quota) {
            keep[i] = true;
        }
    }
    keep
}

/// One key point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bullet {
    /// The sentence(s), as written (emoji trimmed from the ends).
    pub text: String,
    /// Who said it (including near-duplicates merged into it), in order of
    /// first appearance.
    pub senders: Vec<String>,
    /// Indices of the source messages, ascending.
    pub messages: Vec<usize>,
}

/// A question or request nobody answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenQuestion {
    /// The question or request.
    pub text: String,
    /// `"question"` or `"request"`.
    pub kind: &'static str,
    /// Who asked.
    pub from: String,
    /// Whom it was addressed to, if anyone in particular.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Index of the message.
    pub message: usize,
}

/// Serves one request: JSON in, JSON out.
pub fn handle(input: &str, embedder: &mut dyn Embed) -> Result<String, Error> {
    let request = input::parse(input).map_err(Error::InvalidInput)?;
    let summary = summarize(&request, embedder)?;
    serde_json::to_string(&summary)
        .map_err(|e| Error::Internal(format!("cannot serialize the summary: {e}")))
}

/// A segment of a message in the summarized range.
struct Unit<'a> {
    message: usize,
    index: usize,
    segment: &'a text::Segment,
}

/// Summarizes a parsed request.
pub fn summarize(request: &Request, embedder: &mut dyn Embed) -> Result<Summary, Error> {
    let prepared: Vec<text::Prepared> = request
        .messages
        .iter()
        .map(|m| text::prepare(&m.text))
        .collect();
    let mut units: Vec<Unit<'_>> = Vec::new();
    for (i, p) in prepared.iter().enumerate().skip(request.since) {
        for (k, s) in p.segments.iter().enumerate() {
            units.push(Unit {
                message: i,
                index: k,
                segment: s,
            });
        }
    }
    // Too many segments: keep the most informative of each stretch of the
    // thread, so that all of it is read, and say so in the output.
    let mut coverage = None;
    if units.len() > MAX_EMBEDDED_SEGMENTS {
        coverage = Some(Coverage {
            sentences: units.len(),
            read: MAX_EMBEDDED_SEGMENTS,
        });
        let scores: Vec<usize> = units
            .iter()
            .map(|u| u.segment.content_words + 2 * usize::from(u.segment.ends_with_question_mark))
            .collect();
        let mut it = spread_pick(&scores, MAX_EMBEDDED_SEGMENTS).into_iter();
        units.retain(|_| it.next().unwrap_or(false));
    }
    if units.is_empty() {
        return Ok(Summary {
            bullets: Vec::new(),
            open_questions: Vec::new(),
            model: MODEL,
            coverage,
        });
    }
    let texts: Vec<String> = units
        .iter()
        .map(|u| {
            if u.segment.embed.trim().is_empty() {
                u.segment.display.clone()
            } else {
                u.segment.embed.clone()
            }
        })
        .collect();
    let vectors = embed_all(embedder, &texts)?;

    let bullets = pick_bullets(request, &units, &vectors);

    // Open questions: every message, with the vectors of its embedded segments.
    let mut seg_vectors: Vec<Vec<Option<&[f32]>>> = prepared
        .iter()
        .map(|p| vec![None; p.segments.len()])
        .collect();
    for (u, v) in units.iter().zip(&vectors) {
        if let Some(slot) = seg_vectors
            .get_mut(u.message)
            .and_then(|s| s.get_mut(u.index))
        {
            *slot = Some(v.as_slice());
        }
    }
    let views: Vec<questions::MessageView<'_>> = request
        .messages
        .iter()
        .zip(&prepared)
        .zip(seg_vectors)
        .map(|((m, p), v)| questions::MessageView {
            sender: &m.sender,
            prepared: p,
            vectors: v,
        })
        .collect();
    let open_questions = questions::open_questions(&views, request.since)
        .into_iter()
        .map(|o| OpenQuestion {
            text: o.text,
            kind: match o.kind {
                questions::Kind::Question => "question",
                questions::Kind::Request => "request",
            },
            from: o.from,
            to: o.to,
            message: o.message,
        })
        .collect();
    Ok(Summary {
        bullets,
        open_questions,
        model: MODEL,
        coverage,
    })
}

/// Embeds `texts` in batches of at most [`MAX_TEXTS_PER_CALL`] (one call for
/// any ordinary thread) and checks what comes back: one finite vector of the
/// same non-zero dimension per text, re-normalised to unit length.
pub fn embed_all(embedder: &mut dyn Embed, texts: &[String]) -> Result<Vec<Vec<f32>>, Error> {
    embed_in_batches(embedder, texts, MAX_TEXTS_PER_CALL)
}

fn embed_in_batches(
    embedder: &mut dyn Embed,
    texts: &[String],
    per_call: usize,
) -> Result<Vec<Vec<f32>>, Error> {
    let mut out: Vec<Vec<f32>> = Vec::with_capacity(texts.len());
    for batch in texts.chunks(per_call.max(1)) {
        let vs = embedder.embed(MODEL, batch).map_err(Error::Inference)?;
        if vs.len() != batch.len() {
            return Err(Error::Internal(format!(
                "the host returned {} embeddings for {} texts",
                vs.len(),
                batch.len()
            )));
        }
        out.extend(vs);
    }
    let dim = out.first().map(Vec::len).unwrap_or(0);
    if out
        .iter()
        .any(|v| v.len() != dim || v.iter().any(|x| !x.is_finite()))
        || (dim == 0 && !out.is_empty())
    {
        return Err(Error::Internal(
            "the host returned malformed embeddings".into(),
        ));
    }
    out.iter_mut().for_each(|v| rank::normalize(v));
    Ok(out)
}

/// Is a segment summary material: at least two content words, or one with a
/// number or a link ("27th works", "pickup at 8am")?
fn is_candidate(s: &text::Segment) -> bool {
    s.content_words >= 2 || (s.content_words >= 1 && (s.has_digit || s.has_url))
}

/// How informative a segment is, in [0.5, 1.25]: saturating in its content
/// words, with a bonus for concrete details (numbers, times, links).
fn informativeness(s: &text::Segment) -> f32 {
    let words = (s.content_words as f32 / 6.0).min(1.0);
    0.5 + 0.5 * words
        + 0.15 * f32::from(u8::from(s.has_digit))
        + 0.1 * f32::from(u8::from(s.has_url))
}

/// Number of bullets for `units` distinct points.
pub fn bullet_count(length: Length, units: usize) -> usize {
    if units == 0 {
        return 0;
    }
    let root = (units as f32).sqrt();
    let k = match length {
        Length::Short => (0.9 * root).round().clamp(1.0, 5.0) as usize,
        Length::Medium if units <= 3 => units,
        Length::Medium => (1.5 * root).round().clamp(1.0, 10.0) as usize,
        Length::Long if units <= 4 => units,
        Length::Long => (2.0 * root).round().clamp(1.0, 16.0) as usize,
        Length::Bullets(n) => n,
    };
    k.clamp(1, units)
}

/// A short summary must still say where the thread ended up. If none of the
/// picks states a decision or an outcome, the weakest pick (MMR's last) gives
/// way to the most relevant segment that does, among those of the thread's
/// second half (an early "let's decide" is not the outcome). `picks`,
/// `cues` and `relevance` index `candidates`.
fn ensure_outcome(
    picks: &mut [usize],
    candidates: &[usize],
    units: &[Unit<'_>],
    cues: &[salience::Cues],
    relevance: &[f32],
) {
    let resolves = |c: usize| cues[c].is_resolution();
    if picks.is_empty() || picks.iter().any(|&c| resolves(c)) {
        return;
    }
    let (Some(first), Some(last)) = (units.first(), units.last()) else {
        return;
    };
    let middle = first.message + (last.message - first.message) / 2;
    let best = (0..candidates.len())
        .filter(|&c| units[candidates[c]].message >= middle && resolves(c))
        .max_by(|&a, &b| relevance[a].total_cmp(&relevance[b]));
    if let (Some(best), Some(weakest)) = (best, picks.last_mut()) {
        *weakest = best;
    }
}

fn pick_bullets(request: &Request, units: &[Unit<'_>], vectors: &[Vec<f32>]) -> Vec<Bullet> {
    let mut candidates: Vec<usize> = (0..units.len())
        .filter(|&u| is_candidate(units[u].segment))
        .collect();
    if candidates.is_empty() {
        candidates = (0..units.len())
            .filter(|&u| units[u].segment.content_words >= 1)
            .collect();
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    let cand_vectors: Vec<&[f32]> = candidates.iter().map(|&u| vectors[u].as_slice()).collect();
    let sim = rank::similarity_matrix(&cand_vectors);
    let centrality = rank::lexrank(&sim);
    let cues: Vec<salience::Cues> = candidates
        .iter()
        .map(|&u| salience::cues(units[u].segment))
        .collect();
    let relevance: Vec<f32> = candidates
        .iter()
        .zip(&centrality)
        .zip(&cues)
        .map(|((&u, c), &cue)| {
            let s = units[u].segment;
            let question = if s.ends_with_question_mark { 0.85 } else { 1.0 };
            let salient = salience::score(cue);
            (CENTRALITY_FLOOR + (1.0 - CENTRALITY_FLOOR) * c)
                * informativeness(s)
                * question
                * (1.0 + SALIENCE_WEIGHT * salient)
        })
        .collect();
    // Distinct points: candidates not a near-duplicate of an earlier one.
    let distinct = (0..candidates.len())
        .filter(|&i| (0..i).all(|j| sim[i][j] < NEAR_DUPLICATE))
        .count();
    let k = bullet_count(request.length, distinct);
    let mut picks = rank::mmr(&relevance, &sim, k, MMR_LAMBDA, NEAR_DUPLICATE);
    if request.length == Length::Short {
        ensure_outcome(&mut picks, &candidates, units, &cues, &relevance);
    }
    let picked: Vec<usize> = picks.into_iter().map(|c| candidates[c]).collect();

    // One bullet per message: picked segments of the same message are joined.
    struct Draft {
        units: Vec<usize>,
        messages: Vec<usize>,
    }
    let mut drafts: Vec<Draft> = Vec::new();
    for &u in &picked {
        let m = units[u].message;
        match drafts
            .iter_mut()
            .find(|d| d.units.iter().any(|&x| units[x].message == m))
        {
            Some(d) => d.units.push(u),
            None => drafts.push(Draft {
                units: vec![u],
                messages: vec![m],
            }),
        }
    }
    // Near-duplicates of a picked segment (anything with content) join its
    // bullet: their senders and messages are attributed to it.
    for (u, unit) in units.iter().enumerate() {
        if picked.contains(&u) || unit.segment.content_words == 0 {
            continue;
        }
        let mut best: Option<(usize, f32)> = None;
        for (d, draft) in drafts.iter().enumerate() {
            for &p in &draft.units {
                let s = rank::dot(&vectors[u], &vectors[p]);
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((d, s));
                }
            }
        }
        if let Some((d, s)) = best {
            if s >= NEAR_DUPLICATE && !drafts[d].messages.contains(&unit.message) {
                drafts[d].messages.push(unit.message);
            }
        }
    }
    let mut bullets: Vec<Bullet> = drafts
        .into_iter()
        .map(|mut d| {
            d.units.sort_by_key(|&u| (units[u].message, units[u].index));
            d.messages.sort_unstable();
            let text = d
                .units
                .iter()
                .map(|&u| units[u].segment.display.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let mut senders: Vec<String> = Vec::new();
            for &m in &d.messages {
                if let Some(msg) = request.messages.get(m) {
                    if !senders.contains(&msg.sender) {
                        senders.push(msg.sender.clone());
                    }
                }
            }
            Bullet {
                text: text::shorten(&text, 2 * text::MAX_DISPLAY_CHARS),
                senders,
                messages: d.messages,
            }
        })
        .collect();
    bullets.sort_by_key(|b| b.messages.first().copied().unwrap_or(usize::MAX));
    bullets
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "feature" });

    use cloister::feature::inference::{self, InferenceError};

    struct Summarize;

    struct HostEmbed;

    impl crate::Embed for HostEmbed {
        fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
            // As many calls as the host's per-call budget needs.
            cloister_embed_budget::embed_in_calls(texts, |chunk| {
                inference::embed(model, chunk).map_err(|e| match e {
                    InferenceError::ModelNotAvailable(m) => format!("model not available: {m}"),
                    InferenceError::InvalidInput(m) => format!("the host refused the batch: {m}"),
                    InferenceError::Internal(m) => format!("the model failed: {m}"),
                })
            })
        }
    }

    impl Guest for Summarize {
        fn metadata() -> PluginInfo {
            PluginInfo {
                name: "summarize".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "Extractive chat-thread summary: key points with senders and sources, open questions."
                    .to_string(),
                models: vec![crate::MODEL.to_string()],
            }
        }

        fn handle(input: String) -> Result<String, FeatureError> {
            crate::handle(&input, &mut HostEmbed).map_err(|e| match e {
                crate::Error::InvalidInput(m) => FeatureError::InvalidInput(m),
                crate::Error::Inference(m) => FeatureError::Inference(m),
                crate::Error::Internal(m) => FeatureError::Internal(m),
            })
        }
    }

    export!(Summarize);
}

#[cfg(test)]
mod tests;
