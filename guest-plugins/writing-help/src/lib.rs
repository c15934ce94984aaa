//! `writing-help`: spelling, grammar, style and tone suggestions.
//!
//! Input: `{"text": "...", "target_tone": "formal" | "casual" | "friendly"}`
//! (`target_tone` optional; `"detect_tone": false` skips the tone part and its
//! inference call).
//!
//! Output: `{"offsets": "unicode_scalar", "suggestions": [...], "tone": {...}}`
//! where each suggestion is
//! `{"start", "end", "kind", "rule", "message", "replacements"}`:
//!
//! - `start`/`end`: a half-open range of **Unicode scalar values** (Rust
//!   `char`s, Python `str` indices; *not* UTF-16 code units and not bytes) into
//!   `text`. An emoji such as 😀 counts 1 (it is 2 UTF-16 units, 4 bytes).
//! - `kind`: `spelling`, `grammar` or `style` (harper-core, compiled in) or
//!   `tone` (a classifier over the sentence embedding; the span is a whole
//!   sentence that surely reads as another tone than the target).
//! - `replacements`: texts that can replace `text[start..end]`, best first;
//!   possibly empty.
//!
//! `language`: `{"detected": ISO 639-3 code, "name", "checked"}`. Only
//! English is checked: for another language (or a text with no words, code
//! `zxx`) the suggestions are empty, `tone` is null and `notes` says why.
//!
//! `tone`: `{"detected", "confidence", "margin", "scores": {tone: probability},
//! "target", ...}`, `detected` being a tone or `"unsure"`; or `null` when not
//! requested, unavailable or the text has no words (then `notes` says why).
//!
//! The component is pre-initialized at build time (`wizer-initialize`, run by
//! `cloister-snapshot`): harper's dictionary and linters and the parsed tone
//! classifier are already in the snapshot's memory when a request starts.
//!
//! The analysis is plain Rust over an [`Embed`] trait and builds natively for
//! unit tests; the WIT glue exists only on wasm32:
//! `cargo test --manifest-path guest-plugins/writing-help/Cargo.toml --target <host triple>`.

pub mod confusion;
pub mod grammar;
pub mod language;
pub mod rewrite;
pub mod tone;

use harper_core::Document;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tone::Tone;

/// The plugin's name (its metadata and signed name).
pub const NAME: &str = "writing-help";

/// One line for `GET /v1/features`.
pub const DESCRIPTION: &str =
    "Spelling, grammar, style and tone suggestions for a text (harper-core + sentence embeddings).";

/// The embedding model this plugin uses (declared in its metadata).
pub const MODEL: &str = "all-minilm-l6-v2";

/// Longest accepted text, in Unicode scalar values (about 3,500 words); a
/// longer one is refused at once with `invalid_input`. Harper's time grows
/// with the text (~20 ms per 1,000 characters in wasm on a slow 2-core
/// machine) and the tone's embedding call is bounded by [`MAX_UNITS`] ×
/// [`MAX_UNIT_BYTES`]: together they stay well inside the host's default 2 s
/// deadline (`docs/performance.md`, "Big inputs"). At 100,000 characters a
/// request took 2.2 s on that machine and ended in a 504.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// Most texts sent to the model in the one embedding call of a request:
/// sentences beyond this are merged into neighbours.
pub const MAX_UNITS: usize = 16;

/// Longest text sent to the model per unit, in bytes (~70 word pieces: the
/// start of a unit carries its tone; 600 bytes made the embedding call of a
/// long text take 2.2 s on a slow machine, past the deadline).
pub const MAX_UNIT_BYTES: usize = 320;

/// Most tone suggestions per request.
pub const MAX_TONE_SUGGESTIONS: usize = 3;

/// The kinds of suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A misspelled or mistyped word.
    Spelling,
    /// Grammar, agreement, word choice, punctuation, capitalization.
    Grammar,
    /// Style, readability, redundancy.
    Style,
    /// A sentence whose tone is far from the requested one.
    Tone,
}

impl Kind {
    /// The lowercase name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spelling => "spelling",
            Kind::Grammar => "grammar",
            Kind::Style => "style",
            Kind::Tone => "tone",
        }
    }
}

/// One suggestion; `start..end` in Unicode scalar values.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// First character covered.
    pub start: usize,
    /// One past the last character covered.
    pub end: usize,
    /// What kind of problem.
    pub kind: Kind,
    /// Which rule found it (harper's rule name, or `Tone`).
    pub rule: String,
    /// What is wrong, for humans.
    pub message: String,
    /// Texts that could replace the span, best first.
    pub replacements: Vec<String>,
}

impl Suggestion {
    fn to_json(&self) -> Value {
        json!({
            "start": self.start,
            "end": self.end,
            "kind": self.kind.name(),
            "rule": self.rule,
            "message": self.message,
            "replacements": self.replacements,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    text: String,
    #[serde(default)]
    target_tone: Option<String>,
    #[serde(default = "yes")]
    detect_tone: bool,
}

fn yes() -> bool {
    true
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is not what the feature expects (the message names the
    /// field, never its value).
    InvalidInput(String),
    /// The inference call failed (an error only when a target tone was asked
    /// for; otherwise the tone is left out and `notes` says why).
    Inference(String),
}

/// Serves one request: JSON in, JSON out.
pub fn handle(input: &str, embedder: &dyn Embed) -> Result<String, Error> {
    let request: Request = serde_json::from_str(input).map_err(|e| {
        Error::InvalidInput(format!(
            "expected {{\"text\": string, \"target_tone\"?: \"formal\"|\"casual\"|\"friendly\", \"detect_tone\"?: bool}}: {}",
            redact(&e)
        ))
    })?;
    let target = match request.target_tone.as_deref() {
        None => None,
        Some(name) => match Tone::parse(name) {
            Some(t) if Tone::TARGETS.contains(&t) => Some(t),
            _ => {
                return Err(Error::InvalidInput(
                    "target_tone must be one of \"formal\", \"casual\", \"friendly\"".into(),
                ))
            }
        },
    };
    let chars = request.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Error::InvalidInput(format!(
            "text is {chars} characters long; at most {MAX_TEXT_CHARS} are accepted"
        )));
    }
    analyse(
        &request.text,
        target,
        request.detect_tone || target.is_some(),
        embedder,
    )
    .map(|v| v.to_string())
}

/// Builds everything that does not depend on a request: harper's dictionary
/// and linters, the parsed tone classifier. Run by `wizer-initialize` at
/// build time; for a component that is not a snapshot, the first use builds
/// them instead.
pub fn init() {
    grammar::init();
    // A parse error is kept and reported in each request's `notes`.
    let _ = tone::classifier();
}

/// serde_json's error without the offending input: its `Display` may quote a
/// value ("invalid type: string \"…\""), so only syntax positions and
/// unknown/missing field names (the client's own keys) are kept.
fn redact(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("invalid JSON at line {} column {}", e.line(), e.column())
        }
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("unknown field") || msg.starts_with("missing field") {
                msg
            } else {
                format!(
                    "a field has the wrong type (line {} column {})",
                    e.line(),
                    e.column()
                )
            }
        }
    }
}

/// Sentence embeddings, one call per request, started before harper's lint
/// pass and taken after it.
pub trait Embed {
    /// Starts embedding `texts` with `model`; the returned [`Pending`] gives
    /// one L2-normalised vector per text (or why not) when called.
    fn start(&self, model: &str, texts: &[String]) -> Pending<'_>;
}

/// The result of a started [`Embed`] call, taken by calling it.
pub type Pending<'a> = Box<dyn FnOnce() -> Result<Vec<Vec<f32>>, String> + 'a>;

pub fn analyse(
    text: &str,
    target: Option<Tone>,
    want_tone: bool,
    embedder: &dyn Embed,
) -> Result<Value, Error> {
    let language = language::detect(text);
    let language_json = match &language {
        language::Language::English => {
            json!({"detected": "eng", "name": "English", "checked": true})
        }
        language::Language::Other(Some((code, name))) => {
            json!({"detected": code, "name": name, "checked": false})
        }
        language::Language::Other(None) => {
            json!({"detected": "und", "name": "not English", "checked": false})
        }
        language::Language::NoWords => {
            json!({"detected": "zxx", "name": "no words", "checked": false})
        }
    };
    if language != language::Language::English {
        // Nothing here is English: no English "corrections", no tone read by
        // a classifier trained on English.
        let note = match &language {
            language::Language::NoWords => {
                "the text has no words: nothing to check and no tone to read".to_owned()
            }
            language::Language::Other(Some((_, name))) => format!(
                "spelling, grammar and tone are checked for English only; this text reads as {name}"
            ),
            _ => {
                "spelling, grammar and tone are checked for English only; this text is not English"
                    .to_owned()
            }
        };
        let mut out = Map::new();
        out.insert("offsets".into(), json!("unicode_scalar"));
        out.insert("suggestions".into(), json!([]));
        out.insert("tone".into(), Value::Null);
        out.insert("language".into(), language_json);
        out.insert("notes".into(), json!([note]));
        return Ok(Value::Object(out));
    }
    let doc = Document::new_plain_english_curated(text);
    let source = doc.get_source();
    let mut notes: Vec<String> = Vec::new();
    let mut tone_json = Value::Null;

    // The tone's units depend on the sentences only, not on the lint pass:
    // their embedding call starts first and the host runs the model while
    // harper lints (on a machine with a core to spare, the two overlap).
    let mut tone_call = None;
    if want_tone {
        // Only sentences with words have a tone ("!!" or "🎉" alone do not).
        let sentences: Vec<(usize, usize)> = grammar::sentences(&doc)
            .into_iter()
            .filter(|&(s, e)| source[s..e].iter().any(|c| c.is_alphabetic()))
            .collect();
        let units = units(&sentences);
        if units.is_empty() {
            notes.push("no sentence to read a tone from".into());
        } else {
            let texts: Vec<String> = units.iter().map(|u| unit_text(source, *u)).collect();
            let pending = embedder.start(MODEL, &texts);
            tone_call = Some((units, pending));
        }
    }

    let mut suggestions = errors(&doc);

    if let Some((units, pending)) = tone_call {
        match pending().and_then(|vectors| tone_of(source, &units, vectors, target, &suggestions)) {
            Ok((json, mut tone_suggestions)) => {
                tone_json = json;
                suggestions.append(&mut tone_suggestions);
            }
            Err(e) if target.is_some() => return Err(Error::Inference(e)),
            Err(e) => notes.push(format!("tone unavailable: {e}")),
        }
    }

    suggestions.sort_by_key(|s| (s.start, s.end, s.kind == Kind::Tone));
    let mut out = Map::new();
    out.insert("offsets".into(), json!("unicode_scalar"));
    out.insert(
        "suggestions".into(),
        Value::Array(suggestions.iter().map(Suggestion::to_json).collect()),
    );
    out.insert("tone".into(), tone_json);
    out.insert("language".into(), language_json);
    if !notes.is_empty() {
        out.insert("notes".into(), json!(notes));
    }
    Ok(Value::Object(out))
}

/// Spelling, grammar and style suggestions of `doc`: harper's and the
/// possessive confusions, never overlapping (harper's first).
pub fn errors(doc: &Document) -> Vec<Suggestion> {
    let mut found = grammar::check(doc);
    for c in confusion::check(doc.get_source()) {
        if !found.iter().any(|s| s.start < c.end && c.start < s.end) {
            found.push(c);
        }
    }
    found.sort_by_key(|s| (s.start, s.end));
    found
}

/// Groups sentences into at most [`MAX_UNITS`] units of consecutive
/// sentences, as even as possible, in order.
pub fn units(sentences: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let n = sentences.len();
    if n <= MAX_UNITS {
        return sentences.to_vec();
    }
    (0..MAX_UNITS)
        .map(|i| {
            let first = i * n / MAX_UNITS;
            let last = ((i + 1) * n / MAX_UNITS).max(first + 1) - 1;
            (sentences[first].0, sentences[last].1)
        })
        .collect()
}

/// The text of a unit as sent to the model: at most [`MAX_UNIT_BYTES`],
/// cut at a character boundary.
fn unit_text(source: &[char], (s, e): (usize, usize)) -> String {
    let mut out = String::new();
    for &c in &source[s..e] {
        if out.len() + c.len_utf8() > MAX_UNIT_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

fn scores_json(scores: &[f32; 4]) -> Value {
    let mut m = Map::new();
    for (t, s) in Tone::ALL.iter().zip(scores) {
        m.insert(t.name().into(), json!(round3(*s)));
    }
    Value::Object(m)
}

fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// Embeds the units (one call), reads the text's tone and, for a target,
/// proposes rewrites of the sentences that read as another tone.
///
/// One rule decides everywhere: a text or sentence "reads as" a tone only
/// when [`tone::read`] is sure of it, so a suggestion's message never names
/// a tone the classifier was unsure of, and for a one-sentence text it names
/// exactly the `detected` tone.
fn tone_of(
    source: &[char],
    units: &[(usize, usize)],
    vectors: Vec<Vec<f32>>,
    target: Option<Tone>,
    found: &[Suggestion],
) -> Result<(Value, Vec<Suggestion>), String> {
    let classifier = tone::classifier().map_err(|e| format!("tone classifier: {e}"))?;
    if vectors.len() != units.len() {
        return Err("the model returned a wrong number of vectors".into());
    }
    let per_unit: Vec<[f32; 4]> = vectors
        .iter()
        .map(|v| tone::probabilities(classifier, v))
        .collect::<Option<_>>()
        .ok_or("the model returned vectors of an unexpected size")?;
    let whole = tone::mean(&per_unit).ok_or("no sentence to read a tone from")?;
    let reading = tone::read(&whole);
    let (_, margin) = tone::best(&whole);

    let mut json = json!({
        "detected": reading.name(),
        "confidence": round3(whole.iter().cloned().fold(0.0, f32::max)),
        "margin": round3(margin),
        "scores": scores_json(&whole),
        "target": target.map(Tone::name),
    });
    let mut suggestions = Vec::new();
    if let Some(target) = target {
        // Sentences that surely read as another tone, furthest from the
        // target first.
        let off: Vec<(usize, Tone)> = per_unit
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match tone::read(p) {
                tone::Reading::Sure(t, _) if t != target => Some((i, t)),
                _ => None,
            })
            .collect();
        json["sentences_off_target"] = json!(off.len());
        let mut far = off;
        far.sort_by(|a, b| {
            tone::probability(&per_unit[a.0], target)
                .total_cmp(&tone::probability(&per_unit[b.0], target))
                .then(a.0.cmp(&b.0))
        });
        far.truncate(MAX_TONE_SUGGESTIONS);
        far.sort_by_key(|(i, _)| *i);
        for (i, reads_as) in far {
            let (s, e) = units[i];
            let replacements: Vec<String> = checked_rewrite(source, (s, e), target, found)
                .into_iter()
                .collect();
            let how = if replacements.is_empty() {
                format!("to sound {}, {}", target.name(), rewrite::advice(target))
            } else {
                format!(
                    "a rule-based rewrite toward {} is suggested; {}",
                    target.name(),
                    rewrite::advice(target)
                )
            };
            suggestions.push(Suggestion {
                start: s,
                end: e,
                kind: Kind::Tone,
                rule: "Tone".into(),
                message: format!("This reads as {}: {how}.", reads_as.name()),
                replacements,
            });
        }
    }
    Ok((json, suggestions))
}

/// Is this suggestion an error (not style or tone)?
fn is_error(s: &Suggestion) -> bool {
    matches!(s.kind, Kind::Spelling | Kind::Grammar)
}

/// The rule-based rewrite of `source[s..e]` toward `target`, offered only if
/// it is no worse than the sentence:
/// - every span of the sentence with an error (`found`) is still in it,
///   unchanged or fixed as the checker proposes ("gonna" → "going to"): a
///   rewrite never expands or otherwise alters a mistake ("you're thoughts"
///   never becomes "you are thoughts");
/// - checked again, it has no more spelling or grammar errors than the
///   sentence had.
fn checked_rewrite(
    source: &[char],
    (s, e): (usize, usize),
    target: Tone,
    found: &[Suggestion],
) -> Option<String> {
    let sentence: String = source[s..e].iter().collect();
    let rewritten = rewrite::rewrite(&sentence, target)?;
    // Each mistake as written, or as the checker would fix it.
    let mistakes: Vec<Vec<String>> = found
        .iter()
        .filter(|x| is_error(x) && x.start >= s && x.end <= e)
        .map(|x| {
            let mut forms = vec![source[x.start..x.end].iter().collect::<String>()];
            forms.extend(x.replacements.iter().filter(|r| !r.is_empty()).cloned());
            forms
        })
        .collect();
    if !kept_in_order(&rewritten, &mistakes) {
        return None;
    }
    let after = errors(&Document::new_plain_english_curated(&rewritten))
        .iter()
        .filter(|x| is_error(x))
        .count();
    (after <= mistakes.len()).then_some(rewritten)
}

/// Does `text` contain, for each mistake in order and without overlap, one of
/// its forms (as written, or one of the checker's own fixes)?
fn kept_in_order(text: &str, mistakes: &[Vec<String>]) -> bool {
    let mut rest = text;
    for forms in mistakes {
        let next = forms
            .iter()
            .filter_map(|f| rest.find(f.as_str()).map(|at| at + f.len()))
            .min();
        match next {
            Some(end) => rest = &rest[end..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    wit_bindgen::generate!({
        inline: "package cloister:writing-help;
world writing-help {
    include cloister:feature/feature@0.1.1;
    /// Build-time only: builds harper's state; removed from the snapshot.
    export wizer-initialize: func();
}",
        path: "../../wit",
        generate_all,
    });

    use cloister::feature::inference::{self, InferenceError};

    struct Plugin;

    struct HostEmbed;

    impl crate::Embed for HostEmbed {
        fn start(&self, model: &str, texts: &[String]) -> crate::Pending<'_> {
            // As many calls as the host's per-call budget needs, all started
            // now (the host keeps up to four pending per instance).
            let calls: Vec<Result<inference::PendingEmbed, String>> =
                cloister_embed_budget::calls(texts)
                    .into_iter()
                    .map(|range| inference::start_embed(model, &texts[range]).map_err(reason))
                    .collect();
            Box::new(move || {
                let mut out = Vec::new();
                for call in calls {
                    out.extend(call?.finish().map_err(reason)?);
                }
                Ok(out)
            })
        }
    }

    fn reason(e: InferenceError) -> String {
        match e {
            InferenceError::ModelNotAvailable(m) => format!("model not available: {m}"),
            InferenceError::InvalidInput(m) => format!("the host refused the batch: {m}"),
            InferenceError::Internal(m) => format!("the model failed: {m}"),
        }
    }

    impl Guest for Plugin {
        fn metadata() -> PluginInfo {
            PluginInfo {
                name: crate::NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: crate::DESCRIPTION.into(),
                models: vec![crate::MODEL.into()],
            }
        }

        fn handle(input: String) -> Result<String, FeatureError> {
            crate::handle(&input, &HostEmbed).map_err(|e| match e {
                crate::Error::InvalidInput(m) => FeatureError::InvalidInput(m),
                crate::Error::Inference(m) => FeatureError::Inference(m),
            })
        }

        fn wizer_initialize() {
            crate::init();
        }
    }

    export!(Plugin);
}
