//! Tone from embedding similarity to prototype sentences.
//!
//! The plugin carries prototype sentences for each tone
//! (`prototypes/sentences.json`) and their embeddings, computed offline with
//! the same model the host runs (`prototypes/embeddings.bin`). The kept test
//! `prototype_embeddings_match_the_model` of `cloister-eval` recomputes them
//! with the real backend and checks the file; it rewrites it when run with
//! `CLOISTER_WRITE_PROTOTYPES=1`. Per request the text's sentences are embedded in
//! one inference call; a text (or sentence) scores for a tone the mean of its
//! [`TOP_K`] highest cosine similarities to that tone's prototypes, and its
//! tone is the best-scoring one.
//!
//! `embeddings.bin` layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8  | magic `CLTONE\0\x01` |
//! | 4  | dimensions `d` (u32) |
//! | 4  | count `n` (u32), equal to the number of sentences |
//! | 32 | the model's digest, as in the measurement log (all its files) |
//! | 32 | SHA-256 of `sentences.json` they were computed from |
//! | 4·d·n | the vectors, f32, in the order of `sentences.json` |

use cloister_tone_prototypes::SentencesFile;
use std::sync::OnceLock;

/// The tones this feature knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tone {
    /// Businesslike, impersonal, complete sentences.
    Formal,
    /// Relaxed, everyday, slangy.
    Casual,
    /// Warm, appreciative, polite.
    Friendly,
    /// Hostile, blaming, shouting.
    Angry,
}

impl Tone {
    /// All tones, in the order of score arrays.
    pub const ALL: [Tone; 4] = [Tone::Formal, Tone::Casual, Tone::Friendly, Tone::Angry];

    /// The tones a client may ask to move toward (not angry).
    pub const TARGETS: [Tone; 3] = [Tone::Formal, Tone::Casual, Tone::Friendly];

    /// The lowercase name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Tone::Formal => "formal",
            Tone::Casual => "casual",
            Tone::Friendly => "friendly",
            Tone::Angry => "angry",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<Tone> {
        Tone::ALL.into_iter().find(|t| t.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The prototype sentences, as written by hand.
pub const SENTENCES_JSON: &str = include_str!("../prototypes/sentences.json");
/// Their embeddings, as computed offline.
pub const EMBEDDINGS_BIN: &[u8] = include_bytes!("../prototypes/embeddings.bin");
/// How many of a tone's nearest prototypes are averaged into its score.
pub const TOP_K: usize = 3;

/// The parsed prototype set.
pub struct Prototypes {
    /// The model the vectors come from (its name in `inference.embed`).
    pub model: String,
    dims: usize,
    rows: Vec<(Tone, Vec<f32>)>,
}

static PROTOTYPES: OnceLock<Result<Prototypes, String>> = OnceLock::new();

/// The prototypes, parsed once (at build time, in `wizer-initialize`).
pub fn prototypes() -> Result<&'static Prototypes, &'static str> {
    PROTOTYPES
        .get_or_init(|| Prototypes::parse(SENTENCES_JSON, EMBEDDINGS_BIN))
        .as_ref()
        .map_err(|e| e.as_str())
}

/// The prototype sentences (tone, text), in file order.
pub fn sentences() -> Result<Vec<(Tone, String)>, String> {
    SentencesFile::parse(SENTENCES_JSON.as_bytes())?
        .sentences
        .into_iter()
        .map(|p| {
            Tone::parse(&p.tone)
                .map(|t| (t, p.text))
                .ok_or_else(|| format!("sentences.json: unknown tone `{}`", p.tone))
        })
        .collect()
}

impl Prototypes {
    fn parse(sentences_json: &str, bin: &[u8]) -> Result<Prototypes, String> {
        let file = SentencesFile::parse(sentences_json.as_bytes())?;
        let tones = sentences()?;
        let (header, vectors) = cloister_tone_prototypes::decode(bin)?;
        if header.count != tones.len() {
            return Err(format!(
                "embeddings.bin holds {} vectors of {} for {} sentences: regenerate it",
                header.count,
                header.dims,
                tones.len()
            ));
        }
        let rows = tones
            .into_iter()
            .map(|(tone, _)| tone)
            .zip(vectors)
            .collect();
        Ok(Prototypes {
            model: file.model,
            dims: header.dims,
            rows,
        })
    }

    /// The vector of the first prototype of `tone` (for tests and tools).
    pub fn vector_of(&self, tone: Tone) -> &[f32] {
        self.rows
            .iter()
            .find(|(t, _)| *t == tone)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// Scores of `v` (an L2-normalised embedding) for each tone of
    /// [`Tone::ALL`]: the mean of its [`TOP_K`] highest similarities to that
    /// tone's prototypes. `None` if `v` has the wrong size or is not finite.
    pub fn scores(&self, v: &[f32]) -> Option<[f32; 4]> {
        if v.len() != self.dims || !v.iter().all(|x| x.is_finite()) {
            return None;
        }
        let mut per_tone: [Vec<f32>; 4] = Default::default();
        for (tone, p) in &self.rows {
            per_tone[tone.index()].push(dot(v, p));
        }
        let mut out = [0.0; 4];
        for (i, sims) in per_tone.iter_mut().enumerate() {
            sims.sort_by(|a, b| b.total_cmp(a));
            let k = sims.len().min(TOP_K);
            out[i] = if k == 0 {
                f32::NEG_INFINITY
            } else {
                sims[..k].iter().sum::<f32>() / k as f32
            };
        }
        Some(out)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The mean of `vectors`, L2-normalised (`None` if empty or zero).
pub fn mean_direction(vectors: &[Vec<f32>]) -> Option<Vec<f32>> {
    let first = vectors.first()?;
    let mut sum = vec![0.0f32; first.len()];
    for v in vectors {
        if v.len() != sum.len() {
            return None;
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let norm = dot(&sum, &sum).sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| sum.iter().map(|x| x / norm).collect())
}

/// The best tone of `scores` and its margin over the runner-up.
pub fn best(scores: &[f32; 4]) -> (Tone, f32) {
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    (Tone::ALL[order[0]], scores[order[0]] - scores[order[1]])
}

/// How far `scores` are from `target`: the target's score minus the best
/// other tone's (negative when another tone wins).
pub fn gap_to(scores: &[f32; 4], target: Tone) -> f32 {
    let other = Tone::ALL
        .iter()
        .filter(|t| **t != target)
        .map(|t| scores[t.index()])
        .fold(f32::NEG_INFINITY, f32::max);
    scores[target.index()] - other
}
