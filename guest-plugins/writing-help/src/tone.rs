//! Tone: a softmax regression over the sentence embedding.
//!
//! `tone/training.json` holds 464 labelled sentences written for this project
//! (116 per tone); `tone/classifier.bin` the classifier trained on their
//! embeddings by the same model the host runs (layout and training in
//! `cloister_tone_prototypes::classifier`). The kept test
//! `tone_classifier_matches_its_training` of `cloister-eval` retrains it with
//! the real model and checks the file; `cloister-eval tone` gives its
//! cross-validated accuracy and calibration.
//!
//! Per request the text's sentences are embedded in one inference call; each
//! sentence gets the four tone probabilities, and the text the mean of its
//! sentences'. A tone is stated only when its probability reaches
//! [`UNSURE_BELOW`]; below, the answer is "unsure" (see [`Reading`]).

use cloister_tone_prototypes::Classifier;
pub use cloister_tone_prototypes::UNSURE_BELOW;
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

/// The trained classifier, as committed.
pub const CLASSIFIER_BIN: &[u8] = include_bytes!("../tone/classifier.bin");

static CLASSIFIER: OnceLock<Result<Classifier, String>> = OnceLock::new();

/// The classifier, parsed once (at build time, in `wizer-initialize`).
pub fn classifier() -> Result<&'static Classifier, &'static str> {
    CLASSIFIER
        .get_or_init(|| {
            let c = Classifier::decode(CLASSIFIER_BIN)?;
            if c.classes != Tone::ALL.len() {
                return Err(format!(
                    "classifier.bin has {} classes, not the {} tones",
                    c.classes,
                    Tone::ALL.len()
                ));
            }
            Ok(c)
        })
        .as_ref()
        .map_err(|e| e.as_str())
}

/// The probabilities of each tone of [`Tone::ALL`] for one embedding; `None`
/// if it has the wrong size or is not finite.
pub fn probabilities(c: &Classifier, v: &[f32]) -> Option<[f32; 4]> {
    let p = c.probabilities(v)?;
    p.try_into().ok()
}

/// The mean of several probability vectors (`None` if there are none).
pub fn mean(ps: &[[f32; 4]]) -> Option<[f32; 4]> {
    if ps.is_empty() {
        return None;
    }
    let mut out = [0.0f32; 4];
    for p in ps {
        for (o, x) in out.iter_mut().zip(p) {
            *o += x;
        }
    }
    out.iter_mut().for_each(|o| *o /= ps.len() as f32);
    Some(out)
}

/// What the classifier says of a text or a sentence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// This tone, with its probability.
    Sure(Tone, f32),
    /// No tone reaches [`UNSURE_BELOW`].
    Unsure,
}

impl Reading {
    /// The JSON name: the tone's, or `"unsure"`.
    pub fn name(self) -> &'static str {
        match self {
            Reading::Sure(t, _) => t.name(),
            Reading::Unsure => "unsure",
        }
    }
}

/// The most probable tone of `p` and its margin over the runner-up.
pub fn best(p: &[f32; 4]) -> (Tone, f32) {
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    (Tone::ALL[order[0]], p[order[0]] - p[order[1]])
}

/// The reading of `p`: its best tone if that reaches [`UNSURE_BELOW`].
pub fn read(p: &[f32; 4]) -> Reading {
    let (tone, _) = best(p);
    let top = p[tone.index()];
    if top >= UNSURE_BELOW {
        Reading::Sure(tone, top)
    } else {
        Reading::Unsure
    }
}

/// The probability of `tone` in `p`.
pub fn probability(p: &[f32; 4], tone: Tone) -> f32 {
    p[tone.index()]
}
