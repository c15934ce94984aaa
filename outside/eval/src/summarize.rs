//! The summarize evaluation: `eval/summarize/threads.json`.
//!
//! **Key-point recall**: each thread lists the key points a good summary must
//! carry, each with the indices of the messages that carry it. A key point is
//! recalled when at least one bullet cites (in its `messages`) at least one of
//! those indices. Recall = recalled key points / all key points (micro, over
//! the set; the per-thread figures and their mean are printed too). The
//! plugin runs with its default options (`length: "medium"`).
//!
//! Recall rises with the number of messages a summary cites, so two
//! baselines cite **the same number of messages** per thread: the first
//! messages of the thread (`lead`) and evenly spaced messages (`spaced`).
//!
//! **Open questions**: precision and recall of the `open_questions` the plugin
//! reports (by message index) against the annotated ones.

use crate::harness::{ms, Harness, Latency, RunOptions};
use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
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
}

/// How many key points some bullet cites a source of.
fn recalled(key_points: &[KeyPoint], cited: &BTreeSet<usize>) -> usize {
    key_points
        .iter()
        .filter(|k| k.messages.iter().any(|i| cited.contains(i)))
        .count()
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
    cited: usize,
    key_points: usize,
    hits: usize,
    lead_hits: usize,
    spaced_hits: usize,
    open: (usize, usize, usize),
    latency: Latency,
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
            if k.messages.iter().any(|&i| i >= n) {
                bail!(
                    "thread {}: key point {:?} cites a message out of range",
                    t.id,
                    k.point
                );
            }
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
        let mut cited = BTreeSet::new();
        for b in &bullets {
            for i in b["messages"].as_array().into_iter().flatten() {
                match i.as_u64() {
                    Some(i) if (i as usize) < n => {
                        cited.insert(i as usize);
                    }
                    _ => bail!("thread {}: a bullet cites {i}, not a message index", t.id),
                }
            }
        }
        let predicted_open: BTreeSet<usize> = out["open_questions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| q["message"].as_u64().map(|i| i as usize))
            .collect();
        let gold_open: BTreeSet<usize> = t.open_questions.iter().copied().collect();
        let hits = recalled(&t.key_points, &cited);
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
            for k in &t.key_points {
                let hit = k.messages.iter().any(|i| cited.contains(i));
                println!(
                    "  {} {} {:?}",
                    if hit { "✓" } else { "✗" },
                    k.point,
                    k.messages
                );
            }
            println!("  open questions: predicted {predicted_open:?}, annotated {gold_open:?}");
        }
        all_latencies.extend(latencies.iter().copied());
        scored.push(Scored {
            id: t.id.clone(),
            messages: n,
            bullets: bullets.len(),
            cited: cited.len(),
            key_points: t.key_points.len(),
            hits,
            lead_hits: recalled(&t.key_points, &lead(n, cited.len())),
            spaced_hits: recalled(&t.key_points, &spaced(n, cited.len())),
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
    println!(
        "\nkey-point recall: {:.3} ({hits}/{kp}); mean per thread {:.3}",
        ratio(hits, kp),
        macro_recall
    );
    println!(
        "  baselines citing as many messages: lead {:.3} ({lead_hits}/{kp}), evenly spaced {:.3} ({spaced_hits}/{kp})",
        ratio(lead_hits, kp),
        ratio(spaced_hits, kp)
    );
    println!(
        "  {:.1} bullets per thread; bullets cite {cited} of {msgs} messages ({:.0}%)",
        bullets as f64 / scored.len().max(1) as f64,
        100.0 * ratio(cited, msgs)
    );
    println!(
        "open questions: precision {:.3} ({tp}/{pred}), recall {:.3} ({tp}/{gold})",
        ratio(tp, pred),
        ratio(tp, gold)
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

    #[test]
    fn recall_counts_any_cited_source() {
        let kps = vec![
            KeyPoint {
                point: "a".into(),
                messages: vec![1, 3],
            },
            KeyPoint {
                point: "b".into(),
                messages: vec![5],
            },
        ];
        assert_eq!(recalled(&kps, &[3].into_iter().collect()), 1);
        assert_eq!(recalled(&kps, &[1, 5].into_iter().collect()), 2);
        assert_eq!(recalled(&kps, &BTreeSet::new()), 0);
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
