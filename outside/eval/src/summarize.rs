//! The summarize evaluation: `eval/summarize/threads.json`.
//!
//! **Key-point recall**: each thread lists the key points a good summary must
//! carry, each with the indices of the messages that carry it, its kind
//! (decision, cause, request, commitment, constraint, number, outcome, other)
//! and one to three `terms`: the words a bullet stating the point must contain.
//! A key point is recalled when one bullet both cites (in its `messages`) one of
//! its messages **and** contains one of its terms in its own text (so a bullet
//! that cites the right message but trims the point away does not count; the
//! citation-only figure is printed beside it). Recall = recalled key points /
//! all key points (micro, over the set), with a 95 % interval from a bootstrap
//! over threads (the key points of one thread are not independent), and per
//! kind. The plugin runs with its default options (`length: "medium"`).
//!
//! Recall rises with the number of messages a summary cites, so two
//! baselines cite **the same number of messages** per thread: the first
//! messages of the thread (`lead`) and evenly spaced messages (`spaced`).
//!
//! **Short summaries**: each thread again with `length: "short"`: recall, and
//! in how many threads that have a decision or outcome key point the short
//! summary states one (Wilson interval).
//!
//! **Open questions**: precision and recall of the `open_questions` the plugin
//! reports (by message index) against the annotated ones, with bootstrap
//! intervals over threads.

use crate::harness::{ms, Harness, Latency, RunOptions};
use crate::stats::{cluster_bootstrap, show, wilson};
use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Set {
    threads: Vec<Thread>,
}

#[derive(Deserialize)]
struct Thread {
    id: String,
    messages: Vec<Value>,
    key_points: Vec<KeyPoint>,
    #[serde(default)]
    open_questions: Vec<usize>,
}

#[derive(Deserialize)]
struct KeyPoint {
    point: String,
    messages: Vec<usize>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    terms: Vec<String>,
}

/// A bullet as the matching rule sees it: the messages it cites and its own text
/// (lowercased).
struct Bullet {
    cites: BTreeSet<usize>,
    text: String,
}

impl Bullet {
    fn new(cites: BTreeSet<usize>, text: &str) -> Bullet {
        Bullet {
            cites,
            text: text.to_lowercase(),
        }
    }

    /// Cites one of the key point's messages and says one of its terms.
    fn states(&self, k: &KeyPoint) -> bool {
        k.messages.iter().any(|i| self.cites.contains(i))
            && k.terms
                .iter()
                .any(|t| self.text.contains(&t.to_lowercase()))
    }

    fn cites_any(&self, k: &KeyPoint) -> bool {
        k.messages.iter().any(|i| self.cites.contains(i))
    }
}

/// Which key points some bullet states (cites a source of and contains a term of).
fn stated(key_points: &[KeyPoint], bullets: &[Bullet]) -> Vec<bool> {
    key_points
        .iter()
        .map(|k| bullets.iter().any(|b| b.states(k)))
        .collect()
}

/// How many key points some bullet states.
fn recalled(key_points: &[KeyPoint], bullets: &[Bullet]) -> usize {
    stated(key_points, bullets)
        .into_iter()
        .filter(|&x| x)
        .count()
}

/// How many key points some bullet cites a source of (the citation-only rule).
fn cited_only(key_points: &[KeyPoint], bullets: &[Bullet]) -> usize {
    key_points
        .iter()
        .filter(|k| bullets.iter().any(|b| b.cites_any(k)))
        .count()
}

/// A baseline's "summary": each chosen message as a bullet of its own text.
fn as_bullets(messages: &[Value], chosen: &BTreeSet<usize>) -> Vec<Bullet> {
    chosen
        .iter()
        .map(|&i| {
            Bullet::new(
                [i].into_iter().collect(),
                messages[i]["text"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

/// Refuses a key point the matching rule cannot use: no terms, or a term that none of its
/// messages contains (a typo in the set would silently lower every figure).
fn check_key_point(thread: &str, messages: &[Value], k: &KeyPoint) -> anyhow::Result<()> {
    if k.messages.is_empty() || k.messages.iter().any(|&i| i >= messages.len()) {
        bail!(
            "thread {thread}: key point {:?} cites no message or one out of range",
            k.point
        );
    }
    if k.terms.is_empty() {
        bail!("thread {thread}: key point {:?} has no terms", k.point);
    }
    for t in &k.terms {
        let t = t.to_lowercase();
        if !k.messages.iter().any(|&i| {
            messages[i]["text"]
                .as_str()
                .is_some_and(|m| m.to_lowercase().contains(&t))
        }) {
            bail!(
                "thread {thread}: key point {:?}: term {t:?} is in none of its messages",
                k.point
            );
        }
    }
    Ok(())
}

/// The first `c` messages.
fn lead(n: usize, c: usize) -> BTreeSet<usize> {
    (0..c.min(n)).collect()
}

/// `c` messages spread evenly over `n`.
fn spaced(n: usize, c: usize) -> BTreeSet<usize> {
    if c == 0 || n == 0 {
        return BTreeSet::new();
    }
    let c = c.min(n);
    (0..c).map(|j| ((2 * j + 1) * n) / (2 * c)).collect()
}

/// True positives, predicted, gold.
fn prf(predicted: &BTreeSet<usize>, gold: &BTreeSet<usize>) -> (usize, usize, usize) {
    (
        predicted.intersection(gold).count(),
        predicted.len(),
        gold.len(),
    )
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

struct Scored {
    id: String,
    messages: usize,
    bullets: usize,
    /// The `short` summary: bullets, key points stated, and whether it states
    /// the thread's outcome (`None` if no key point is a decision or outcome).
    short_bullets: usize,
    short_hits: usize,
    short_outcome: Option<bool>,
    cited: usize,
    key_points: usize,
    hits: usize,
    citation_hits: usize,
    /// (kind, stated) per key point.
    kinds: Vec<(String, bool)>,
    lead_hits: usize,
    spaced_hits: usize,
    open: (usize, usize, usize),
    latency: Latency,
}

/// The bullets of a plugin output, checked: every citation is a message index.
fn bullets_of(thread: &str, n: usize, out: &Value) -> anyhow::Result<Vec<Bullet>> {
    let mut said = Vec::new();
    for b in out["bullets"].as_array().into_iter().flatten() {
        let mut cites = BTreeSet::new();
        for i in b["messages"].as_array().into_iter().flatten() {
            match i.as_u64() {
                Some(i) if (i as usize) < n => {
                    cites.insert(i as usize);
                }
                _ => bail!("thread {thread}: a bullet cites {i}, not a message index"),
            }
        }
        said.push(Bullet::new(cites, b["text"].as_str().unwrap_or("")));
    }
    Ok(said)
}

/// Runs the set; prints per-thread and overall figures.
pub async fn run(h: &Harness, opts: &RunOptions) -> anyhow::Result<()> {
    let path = opts.data.join("summarize/threads.json");
    let set: Set = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a valid set", path.display()))?;
    let plugin = h.plugin("summarize").await?;
    println!(
        "summarize {} — {} threads, {} key points, {} messages ({})",
        plugin.info().version,
        set.threads.len(),
        set.threads
            .iter()
            .map(|t| t.key_points.len())
            .sum::<usize>(),
        set.threads.iter().map(|t| t.messages.len()).sum::<usize>(),
        path.display()
    );
    // Warm-up (first instantiation, first model run) outside the figures.
    if let Some(t) = set.threads.first() {
        let input = serde_json::json!({ "messages": t.messages }).to_string();
        plugin
            .handle(&input)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let mut scored = Vec::new();
    let mut all_latencies: Vec<Duration> = Vec::new();
    let usage_before = h.backend.usage();
    let mut requests = 0u64;
    for t in &set.threads {
        let n = t.messages.len();
        for k in &t.key_points {
            check_key_point(&t.id, &t.messages, k)?;
        }
        let input = serde_json::json!({ "messages": t.messages }).to_string();
        let mut latencies = Vec::with_capacity(opts.repeat);
        let mut first: Option<Value> = None;
        for _ in 0..opts.repeat {
            let started = Instant::now();
            let out = plugin
                .handle(&input)
                .await
                .map_err(|e| anyhow::anyhow!("thread {}: {e}", t.id))?;
            latencies.push(started.elapsed());
            requests += 1;
            if first.is_none() {
                first = Some(serde_json::from_str(&out).context("plugin output")?);
            }
        }
        let out = first.unwrap_or(Value::Null);
        let bullets = out["bullets"].as_array().cloned().unwrap_or_default();
        let said = bullets_of(&t.id, n, &out)?;
        let cited: BTreeSet<usize> = said.iter().flat_map(|b| b.cites.iter().copied()).collect();
        // The `short` summary, once: does it still carry the outcome?
        let short_input =
            serde_json::json!({ "messages": t.messages, "options": {"length": "short"} })
                .to_string();
        let short: Value = serde_json::from_str(
            &plugin
                .handle(&short_input)
                .await
                .map_err(|e| anyhow::anyhow!("thread {} (short): {e}", t.id))?,
        )
        .context("plugin output (short)")?;
        let short_said = bullets_of(&t.id, n, &short)?;
        let short_states = stated(&t.key_points, &short_said);
        let resolutions: Vec<bool> = t
            .key_points
            .iter()
            .zip(&short_states)
            .filter(|(k, _)| matches!(k.kind.as_deref(), Some("decision" | "outcome")))
            .map(|(_, &s)| s)
            .collect();
        let short_outcome = (!resolutions.is_empty()).then(|| resolutions.iter().any(|&s| s));
        let predicted_open: BTreeSet<usize> = out["open_questions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| q["message"].as_u64().map(|i| i as usize))
            .collect();
        let gold_open: BTreeSet<usize> = t.open_questions.iter().copied().collect();
        let states = stated(&t.key_points, &said);
        let hits = states.iter().filter(|&&x| x).count();
        if opts.verbose {
            println!("\n== {} ({} messages)", t.id, n);
            for b in &bullets {
                println!(
                    "  • {} — {} {}",
                    b["text"].as_str().unwrap_or(""),
                    b["senders"],
                    b["messages"]
                );
            }
            for q in out["open_questions"].as_array().into_iter().flatten() {
                println!(
                    "  ? {} — from {} to {} [{}]",
                    q["text"].as_str().unwrap_or(""),
                    q["from"],
                    q["to"],
                    q["message"]
                );
            }
            for (k, hit) in t.key_points.iter().zip(&states) {
                let mark = if *hit {
                    "✓"
                } else if said.iter().any(|b| b.cites_any(k)) {
                    "✗ cited, not stated"
                } else {
                    "✗"
                };
                println!(
                    "  {mark} [{}] {} {:?} {:?}",
                    k.kind.as_deref().unwrap_or("-"),
                    k.point,
                    k.messages,
                    k.terms
                );
            }
            println!("  open questions: predicted {predicted_open:?}, annotated {gold_open:?}");
        }
        all_latencies.extend(latencies.iter().copied());
        scored.push(Scored {
            id: t.id.clone(),
            messages: n,
            bullets: bullets.len(),
            short_bullets: short_said.len(),
            short_hits: short_states.iter().filter(|&&x| x).count(),
            short_outcome,
            cited: cited.len(),
            key_points: t.key_points.len(),
            hits,
            citation_hits: cited_only(&t.key_points, &said),
            kinds: t
                .key_points
                .iter()
                .zip(&states)
                .map(|(k, &s)| (k.kind.clone().unwrap_or_else(|| "other".into()), s))
                .collect(),
            lead_hits: recalled(
                &t.key_points,
                &as_bullets(&t.messages, &lead(n, cited.len())),
            ),
            spaced_hits: recalled(
                &t.key_points,
                &as_bullets(&t.messages, &spaced(n, cited.len())),
            ),
            open: prf(&predicted_open, &gold_open),
            latency: Latency::new(latencies),
        });
    }
    let usage = h.backend.usage().since(usage_before);

    println!(
        "\n{:<22} {:>4} {:>7} {:>5} {:>7} {:>6} {:>6} {:>9} {:>8}",
        "thread", "msgs", "bullets", "cited", "recall", "lead", "spaced", "open p/g", "p50 ms"
    );
    for s in &scored {
        println!(
            "{:<22} {:>4} {:>7} {:>5} {:>7} {:>6} {:>6} {:>9} {:>8.1}",
            s.id,
            s.messages,
            s.bullets,
            s.cited,
            format!("{}/{}", s.hits, s.key_points),
            format!("{}/{}", s.lead_hits, s.key_points),
            format!("{}/{}", s.spaced_hits, s.key_points),
            format!("{}/{}", s.open.1, s.open.2),
            ms(s.latency.percentile(50.0))
        );
    }
    let kp: usize = scored.iter().map(|s| s.key_points).sum();
    let hits: usize = scored.iter().map(|s| s.hits).sum();
    let lead_hits: usize = scored.iter().map(|s| s.lead_hits).sum();
    let spaced_hits: usize = scored.iter().map(|s| s.spaced_hits).sum();
    let macro_recall = scored
        .iter()
        .map(|s| ratio(s.hits, s.key_points))
        .sum::<f64>()
        / scored.len().max(1) as f64;
    let (tp, pred, gold) = scored.iter().fold((0, 0, 0), |a, s| {
        (a.0 + s.open.0, a.1 + s.open.1, a.2 + s.open.2)
    });
    let msgs: usize = scored.iter().map(|s| s.messages).sum();
    let cited: usize = scored.iter().map(|s| s.cited).sum();
    let bullets: usize = scored.iter().map(|s| s.bullets).sum();
    let ci = |f: &dyn Fn(&Scored) -> (usize, usize)| {
        cluster_bootstrap(&scored.iter().map(f).collect::<Vec<_>>())
    };
    let citation_hits: usize = scored.iter().map(|s| s.citation_hits).sum();
    println!(
        "\nkey-point recall (a bullet cites a source and states a term): {} ({hits}/{kp}); mean per thread {:.3}",
        show(ratio(hits, kp), ci(&|s| (s.hits, s.key_points))),
        macro_recall
    );
    println!(
        "  citation only (the old rule): {:.3} ({citation_hits}/{kp})",
        ratio(citation_hits, kp)
    );
    println!(
        "  baselines citing as many messages: lead {} ({lead_hits}/{kp}), evenly spaced {} ({spaced_hits}/{kp})",
        show(ratio(lead_hits, kp), ci(&|s| (s.lead_hits, s.key_points))),
        show(ratio(spaced_hits, kp), ci(&|s| (s.spaced_hits, s.key_points)))
    );
    let mut by_kind: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for s in &scored {
        let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (kind, hit) in &s.kinds {
            let e = per.entry(kind.as_str()).or_default();
            e.0 += usize::from(*hit);
            e.1 += 1;
        }
        for (kind, c) in per {
            by_kind.entry(kind).or_default().push(c);
        }
    }
    for (kind, clusters) in &by_kind {
        let (k, n) = clusters.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
        println!(
            "  recall, {kind} points: {} ({k}/{n})",
            show(ratio(k, n), cluster_bootstrap(clusters))
        );
    }
    println!(
        "  {:.1} bullets per thread; bullets cite {cited} of {msgs} messages ({:.0}%)",
        bullets as f64 / scored.len().max(1) as f64,
        100.0 * ratio(cited, msgs)
    );
    let short_hits: usize = scored.iter().map(|s| s.short_hits).sum();
    let short_bullets: usize = scored.iter().map(|s| s.short_bullets).sum();
    let with_outcome: Vec<bool> = scored.iter().filter_map(|s| s.short_outcome).collect();
    let outcome_stated = with_outcome.iter().filter(|&&x| x).count();
    println!(
        "short summaries: {:.1} bullets per thread, key-point recall {} ({short_hits}/{kp}); \
         the outcome (a decision or outcome key point) stated in {outcome_stated} of {} threads, {}",
        short_bullets as f64 / scored.len().max(1) as f64,
        show(ratio(short_hits, kp), ci(&|s| (s.short_hits, s.key_points))),
        with_outcome.len(),
        show(
            ratio(outcome_stated, with_outcome.len()),
            wilson(outcome_stated, with_outcome.len())
        )
    );
    println!(
        "open questions: precision {} ({tp}/{pred}), recall {} ({tp}/{gold})",
        show(ratio(tp, pred), ci(&|s| (s.open.0, s.open.1))),
        show(ratio(tp, gold), ci(&|s| (s.open.0, s.open.2)))
    );
    let latency = Latency::new(all_latencies);
    println!(
        "latency per request (fresh instance + parse + embed + rank): {}",
        latency.summary()
    );
    if requests > 0 {
        println!(
            "  per request: {:.2} embed calls, {:.1} texts, {:.1} ms in the model",
            usage.calls as f64 / requests as f64,
            usage.texts as f64 / requests as f64,
            usage.nanos as f64 / 1e6 / requests as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(messages: &[usize], terms: &[&str]) -> KeyPoint {
        KeyPoint {
            point: "p".into(),
            messages: messages.to_vec(),
            kind: None,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn bullet(cites: &[usize], text: &str) -> Bullet {
        Bullet::new(cites.iter().copied().collect(), text)
    }

    #[test]
    fn a_key_point_needs_a_cited_source_and_a_term_in_the_bullet() {
        let kps = vec![
            kp(&[1, 3], &["thursday"]),
            kp(&[5], &["passport", "numbers"]),
        ];
        // Cites the source and says the term (any case).
        assert_eq!(
            recalled(&kps, &[bullet(&[3], "Release moves to Thursday")]),
            1
        );
        // Cites the source but the bullet trimmed the point away: not recalled.
        let trimmed = [bullet(&[3], "I'll tell support")];
        assert_eq!(recalled(&kps, &trimmed), 0);
        assert_eq!(cited_only(&kps, &trimmed), 1);
        // Says the term but cites another message: not recalled.
        assert_eq!(recalled(&kps, &[bullet(&[4], "thursday it is")]), 0);
        // Either term is enough; both points.
        let both = [
            bullet(&[1], "moved to thursday"),
            bullet(&[5], "send me your PASSPORT"),
        ];
        assert_eq!(recalled(&kps, &both), 2);
        assert_eq!(recalled(&kps, &[]), 0);
    }

    #[test]
    fn key_points_the_rule_cannot_use_are_refused() {
        let messages: Vec<Value> = vec![
            serde_json::json!({"text": "let's move the release to Thursday"}),
            serde_json::json!({"text": "ok"}),
        ];
        assert!(check_key_point("t", &messages, &kp(&[0], &["Thursday"])).is_ok());
        let e = check_key_point("t", &messages, &kp(&[0], &["friday"])).unwrap_err();
        assert!(e.to_string().contains("friday"), "{e}");
        assert!(check_key_point("t", &messages, &kp(&[0], &[])).is_err());
        assert!(check_key_point("t", &messages, &kp(&[2], &["ok"])).is_err());
        assert!(check_key_point("t", &messages, &kp(&[], &["ok"])).is_err());
    }

    #[test]
    fn baselines() {
        assert_eq!(lead(10, 3), [0, 1, 2].into_iter().collect());
        assert_eq!(spaced(10, 2), [2, 7].into_iter().collect());
        assert_eq!(spaced(3, 5).len(), 3);
        assert!(spaced(0, 2).is_empty());
        let p: BTreeSet<usize> = [1, 2].into_iter().collect();
        let g: BTreeSet<usize> = [2, 3, 4].into_iter().collect();
        assert_eq!(prf(&p, &g), (1, 2, 3));
    }
}
