//! The writing-help evaluation: `eval/writing-help/cases.json`.
//!
//! **Error detection.** Each case is one sentence written for this project;
//! `errors` lists its known spelling/grammar errors as half-open ranges of
//! Unicode scalar values (the plugin's offsets) with the kinds that count as
//! a correct detection (`["spelling"]`, `["grammar"]`, or both where either
//! reading is fair, e.g. "alot"). Clean sentences have no errors.
//!
//! The plugin runs with `detect_tone: false`. Its **error detections** are
//! its suggestions of kind `spelling` or `grammar`; `style` suggestions are
//! not errors and are counted apart (they are neither hits nor false
//! positives). A detection **matches** an annotated error when their spans
//! overlap (share at least one character) and the detection's kind is one of
//! the error's kinds; matching is one-to-one, greedy in text order.
//!
//! - precision = matched detections / detections
//! - recall = matched errors / errors
//!
//! Also printed: the same with kinds ignored (span overlap only), per-kind
//! figures, and false positives on the clean sentences.
//!
//! **Tone.** `tone` cases carry a tone label; the plugin's `tone.detected` is
//! compared with it: accuracy over all cases ("unsure" counts as wrong), the
//! share answered and the accuracy of the answers, and a confusion table.
//! The tone classifier is trained on `guest-plugins/writing-help/tone/`,
//! never on these. Needs the model.
//!
//! **Latency.** `hundred-words.txt` (a 100-word text with a few errors) with
//! `target_tone: "formal"`: fresh instance + harper + one embed call +
//! tone, as through the API minus HTTP.

use crate::harness::{ms, Harness, Latency, RunOptions};
use crate::stats::{show, wilson};
use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Deserialize)]
struct Set {
    cases: Vec<Case>,
    #[serde(default)]
    tone: Vec<ToneCase>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    text: String,
    errors: Vec<Annotated>,
}

#[derive(Deserialize)]
struct Annotated {
    start: usize,
    end: usize,
    text: String,
    kinds: Vec<String>,
}

#[derive(Deserialize)]
struct ToneCase {
    id: String,
    tone: String,
    text: String,
}

/// One suggestion of the plugin, as scored.
#[derive(Debug, Clone, PartialEq)]
struct Detection {
    start: usize,
    end: usize,
    kind: String,
    rule: String,
    message: String,
    replacements: Vec<String>,
}

/// The plugin's memory budget, as in its host configuration: its snapshot
/// starts with ~160 MiB of harper dictionary and linters (docs/features.md).
pub const MEMORY_BYTES: usize = 256 << 20;

/// The kinds that are error detections (style and tone are not).
const ERROR_KINDS: [&str; 2] = ["spelling", "grammar"];

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// One-to-one greedy matching in text order: returns, for each error, the
/// index of the detection matched to it. `kinds` decides whether kinds must
/// be compatible.
fn match_errors(errors: &[Annotated], detections: &[Detection], kinds: bool) -> Vec<Option<usize>> {
    let mut used = vec![false; detections.len()];
    errors
        .iter()
        .map(|e| {
            let hit = detections.iter().enumerate().position(|(i, d)| {
                !used[i]
                    && overlaps((e.start, e.end), (d.start, d.end))
                    && (!kinds || e.kinds.contains(&d.kind))
            });
            if let Some(i) = hit {
                used[i] = true;
            }
            hit
        })
        .collect()
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn detections(out: &Value) -> anyhow::Result<Vec<Detection>> {
    let mut v = Vec::new();
    for s in out["suggestions"].as_array().into_iter().flatten() {
        let num = |k: &str| {
            s[k].as_u64()
                .map(|n| n as usize)
                .with_context(|| format!("suggestion without `{k}`: {s}"))
        };
        v.push(Detection {
            start: num("start")?,
            end: num("end")?,
            kind: s["kind"].as_str().unwrap_or_default().to_owned(),
            rule: s["rule"].as_str().unwrap_or_default().to_owned(),
            message: s["message"].as_str().unwrap_or_default().to_owned(),
            replacements: s["replacements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
        });
    }
    Ok(v)
}

fn chars(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// Counts over the set.
#[derive(Default)]
struct Tally {
    errors: usize,
    detections: usize,
    matched_errors: usize,
    matched_detections: usize,
    span_matched_errors: usize,
    span_matched_detections: usize,
    /// Per annotated kind (first listed): (errors, matched).
    by_error_kind: BTreeMap<String, (usize, usize)>,
    /// Per detected kind: (detections, matched).
    by_detection_kind: BTreeMap<String, (usize, usize)>,
    style: usize,
    clean_cases: usize,
    clean_with_false_positive: usize,
    clean_false_positives: usize,
    clean_style: usize,
}

fn score_case(case: &Case, all: &[Detection], t: &mut Tally) -> (Vec<Option<usize>>, Vec<bool>) {
    let dets: Vec<Detection> = all
        .iter()
        .filter(|d| ERROR_KINDS.contains(&d.kind.as_str()))
        .cloned()
        .collect();
    let style = all.iter().filter(|d| d.kind == "style").count();
    let matched = match_errors(&case.errors, &dets, true);
    let span_matched = match_errors(&case.errors, &dets, false);
    let mut det_matched = vec![false; dets.len()];
    for i in matched.iter().flatten() {
        det_matched[*i] = true;
    }
    t.errors += case.errors.len();
    t.detections += dets.len();
    t.matched_errors += matched.iter().flatten().count();
    t.matched_detections += det_matched.iter().filter(|m| **m).count();
    t.span_matched_errors += span_matched.iter().flatten().count();
    t.span_matched_detections += span_matched.iter().flatten().count();
    t.style += style;
    for (e, m) in case.errors.iter().zip(&matched) {
        let k = e.kinds.first().cloned().unwrap_or_default();
        let k = if e.kinds.len() > 1 {
            "either".into()
        } else {
            k
        };
        let entry = t.by_error_kind.entry(k).or_default();
        entry.0 += 1;
        entry.1 += usize::from(m.is_some());
    }
    for (d, m) in dets.iter().zip(&det_matched) {
        let entry = t.by_detection_kind.entry(d.kind.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(*m);
    }
    if case.errors.is_empty() {
        t.clean_cases += 1;
        t.clean_false_positives += dets.len();
        t.clean_with_false_positive += usize::from(!dets.is_empty());
        t.clean_style += style;
    }
    let all_matched = all
        .iter()
        .map(|d| {
            dets.iter()
                .position(|x| x == d)
                .is_some_and(|i| det_matched[i])
        })
        .collect();
    (matched, all_matched)
}

/// The 100-word text used for latency (also by the host's end-to-end test).
pub fn hundred_words(opts: &RunOptions) -> anyhow::Result<String> {
    let path = opts.data.join("writing-help/hundred-words.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// Runs the set; prints per-case (verbose) and overall figures.
pub async fn run(h: &Harness, opts: &RunOptions) -> anyhow::Result<()> {
    let path = opts.data.join("writing-help/cases.json");
    let set: Set = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a valid set", path.display()))?;
    for c in &set.cases {
        for e in &c.errors {
            if chars(&c.text, e.start, e.end) != e.text || e.start >= e.end {
                bail!(
                    "case {}: span {}..{} is not {:?}",
                    c.id,
                    e.start,
                    e.end,
                    e.text
                );
            }
            if e.kinds.is_empty() || e.kinds.iter().any(|k| !ERROR_KINDS.contains(&k.as_str())) {
                bail!("case {}: kinds must be among {ERROR_KINDS:?}", c.id);
            }
        }
    }

    let plugin = h
        .plugin_with_memory("writing-help", Some(MEMORY_BYTES))
        .await?;
    println!(
        "writing-help {} — {} sentences ({} clean), {} annotated errors, {} tone cases ({})",
        plugin.info().version,
        set.cases.len(),
        set.cases.iter().filter(|c| c.errors.is_empty()).count(),
        set.cases.iter().map(|c| c.errors.len()).sum::<usize>(),
        set.tone.len(),
        path.display()
    );

    let mut t = Tally::default();
    let mut grammar_latencies = Vec::new();
    for c in &set.cases {
        let input = json!({ "text": c.text, "detect_tone": false }).to_string();
        let started = Instant::now();
        let out = plugin
            .handle(&input)
            .await
            .map_err(|e| anyhow::anyhow!("case {}: {e}", c.id))?;
        grammar_latencies.push(started.elapsed());
        let out: Value = serde_json::from_str(&out).context("plugin output")?;
        let all = detections(&out)?;
        let n = c.text.chars().count();
        if let Some(d) = all.iter().find(|d| d.start >= d.end || d.end > n) {
            bail!(
                "case {}: suggestion span {}..{} outside the text",
                c.id,
                d.start,
                d.end
            );
        }
        let (matched, det_ok) = score_case(c, &all, &mut t);
        if opts.verbose {
            println!("\n{} {:?}", c.id, c.text);
            for (e, m) in c.errors.iter().zip(&matched) {
                println!(
                    "  {} error {:?} {}..{} {:?}",
                    if m.is_some() { "✓" } else { "✗ missed" },
                    e.text,
                    e.start,
                    e.end,
                    e.kinds
                );
            }
            for (d, ok) in all.iter().zip(det_ok) {
                let mark = if ok {
                    "✓"
                } else if ERROR_KINDS.contains(&d.kind.as_str()) {
                    "✗ false positive"
                } else {
                    "·"
                };
                println!(
                    "  {mark} {} {:?} {}..{} [{}] {} → {:?}",
                    d.kind,
                    chars(&c.text, d.start, d.end),
                    d.start,
                    d.end,
                    d.rule,
                    d.message,
                    d.replacements
                );
            }
        }
    }

    println!(
        "\nerror detection (spelling + grammar; span overlap and compatible kind; Wilson intervals):\n  precision {} ({}/{}), recall {} ({}/{})",
        show(
            ratio(t.matched_detections, t.detections),
            wilson(t.matched_detections, t.detections)
        ),
        t.matched_detections,
        t.detections,
        show(
            ratio(t.matched_errors, t.errors),
            wilson(t.matched_errors, t.errors)
        ),
        t.matched_errors,
        t.errors
    );
    println!(
        "  kinds ignored (span overlap only): precision {:.3}, recall {:.3}",
        ratio(t.span_matched_detections, t.detections),
        ratio(t.span_matched_errors, t.errors)
    );
    for (k, (n, m)) in &t.by_error_kind {
        println!("  recall, {k} errors: {:.3} ({m}/{n})", ratio(*m, *n));
    }
    for (k, (n, m)) in &t.by_detection_kind {
        println!(
            "  precision, {k} detections: {:.3} ({m}/{n})",
            ratio(*m, *n)
        );
    }
    println!(
        "  clean sentences: {} of {} with a false positive ({} false positives); style suggestions: {} on clean sentences, {} in all",
        t.clean_with_false_positive, t.clean_cases, t.clean_false_positives, t.clean_style, t.style
    );
    println!(
        "  latency per sentence (grammar only, no model): {}",
        Latency::new(grammar_latencies).summary()
    );

    // Tone.
    if !set.tone.is_empty() {
        let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut right = 0;
        for c in &set.tone {
            let input = json!({ "text": c.text }).to_string();
            let out = plugin
                .handle(&input)
                .await
                .map_err(|e| anyhow::anyhow!("tone case {}: {e}", c.id))?;
            let out: Value = serde_json::from_str(&out).context("plugin output")?;
            let detected = out["tone"]["detected"]
                .as_str()
                .with_context(|| format!("tone case {}: no tone in {out}", c.id))?
                .to_owned();
            right += usize::from(detected == c.tone);
            if opts.verbose {
                println!(
                    "  {} {} → {} {} {:?}",
                    if detected == c.tone { "✓" } else { "✗" },
                    c.tone,
                    detected,
                    out["tone"]["scores"],
                    c.text
                );
            }
            *confusion.entry((c.tone.clone(), detected)).or_default() += 1;
        }
        let n = set.tone.len();
        let unsure: usize = confusion
            .iter()
            .filter(|((_, d), _)| d == "unsure")
            .map(|(_, k)| k)
            .sum();
        println!(
            "\ntone (held out: the classifier never saw these): accuracy {} ({right}/{n}, \"unsure\" counted wrong); \
             answered {} of {n} ({unsure} unsure), accuracy of the answers {}",
            show(ratio(right, n), wilson(right, n)),
            n - unsure,
            show(ratio(right, n - unsure), wilson(right, n - unsure)),
        );
        println!(
            "  (labelled → detected): {}",
            confusion
                .iter()
                .map(|((a, b), n)| format!("{a}→{b} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Latency on a 100-word text with a target tone.
    let text = hundred_words(opts)?;
    let input = json!({ "text": text, "target_tone": "formal" }).to_string();
    plugin
        .handle(&input)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = h.backend.usage();
    let mut latencies = Vec::new();
    let runs = opts.repeat.max(1) * 10;
    for _ in 0..runs {
        let started = Instant::now();
        plugin
            .handle(&input)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        latencies.push(started.elapsed());
    }
    let usage = h.backend.usage().since(before);
    println!(
        "\nlatency, {}-word text with target_tone formal (fresh instance + harper + embed + tone): {}",
        text.split_whitespace().count(),
        Latency::new(latencies).summary()
    );
    println!(
        "  per request: {:.2} embed calls, {:.1} texts, {:.1} ms in the model",
        usage.calls as f64 / runs as f64,
        usage.texts as f64 / runs as f64,
        ms(std::time::Duration::from_nanos(usage.nanos)) / runs as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(start: usize, end: usize, kinds: &[&str]) -> Annotated {
        Annotated {
            start,
            end,
            text: String::new(),
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn det(start: usize, end: usize, kind: &str) -> Detection {
        Detection {
            start,
            end,
            kind: kind.into(),
            rule: String::new(),
            message: String::new(),
            replacements: vec![],
        }
    }

    #[test]
    fn overlap_and_kind() {
        let errors = [err(2, 6, &["spelling"]), err(10, 12, &["grammar"])];
        let dets = [det(0, 3, "spelling"), det(10, 11, "spelling")];
        assert_eq!(match_errors(&errors, &dets, true), vec![Some(0), None]);
        assert_eq!(match_errors(&errors, &dets, false), vec![Some(0), Some(1)]);
        // Touching is not overlapping.
        assert_eq!(
            match_errors(&errors, &[det(6, 8, "spelling")], true),
            vec![None, None]
        );
    }

    #[test]
    fn one_detection_matches_one_error() {
        let errors = [err(0, 4, &["grammar"]), err(2, 6, &["grammar"])];
        let dets = [det(0, 6, "grammar")];
        assert_eq!(match_errors(&errors, &dets, true), vec![Some(0), None]);
    }

    #[test]
    fn either_kind() {
        let errors = [err(0, 4, &["spelling", "grammar"])];
        assert_eq!(
            match_errors(&errors, &[det(0, 4, "grammar")], true),
            vec![Some(0)]
        );
    }

    #[test]
    fn tally_counts_clean_false_positives_and_ignores_style() {
        let case = Case {
            id: "c".into(),
            text: "abc".into(),
            errors: vec![],
        };
        let mut t = Tally::default();
        score_case(&case, &[det(0, 1, "grammar"), det(1, 2, "style")], &mut t);
        assert_eq!((t.detections, t.matched_detections), (1, 0));
        assert_eq!((t.clean_false_positives, t.clean_style), (1, 1));
    }

    #[test]
    fn the_set_is_well_formed() {
        let path = crate::harness::repo_path("eval/writing-help/cases.json");
        let set: Set = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert!(set.cases.len() >= 60);
        for c in &set.cases {
            for e in &c.errors {
                assert_eq!(chars(&c.text, e.start, e.end), e.text, "{}", c.id);
            }
        }
    }
}
