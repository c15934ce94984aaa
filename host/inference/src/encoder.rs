//! One sentence-embedding model: tokenizer + ONNX graph run by tract.

use crate::batching::{group_by_length, split_for_threads};
use crate::Limits;
use crate::LoadError;
use cloister_models::{FileRole, VerifiedModel};
use cloister_runtime::{Cancel, InferenceFailure};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

type Plan = Arc<TypedRunnableModel>;

/// How the ONNX graph is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// One plan optimized with symbolic batch and sequence axes.
    Symbolic,
    /// One plan per (batch, sequence) shape, optimized for it and cached
    /// (at most [`MAX_CACHED_PLANS`]); falls back to the symbolic plan when
    /// the cache is full.
    Concrete,
}

/// Most concrete plans kept per model.
pub const MAX_CACHED_PLANS: usize = 256;

/// The token ids and attention mask of one text (no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, `[CLS] … [SEP]`, truncated to the model's `max_tokens`.
    pub ids: Vec<u32>,
}

/// Time spent in one kind of operator during a profiled run
/// ([`SentenceEncoder::profile_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpTime {
    /// tract's name for the (optimized) operator, e.g. `OptMatMul`.
    pub op: String,
    /// How many nodes of the plan run it.
    pub nodes: usize,
    /// Their total time in the run.
    pub time: Duration,
}

/// A loaded sentence encoder.
pub struct SentenceEncoder {
    name: String,
    tokenizer: Tokenizer,
    dimensions: usize,
    max_tokens: usize,
    pad_id: u32,
    /// Decluttered typed model with symbolic `batch` and `sequence` axes.
    typed: TypedModel,
    batch: Symbol,
    sequence: Symbol,
    symbolic: Plan,
    shapes: Shapes,
    plans: Mutex<HashMap<(usize, usize), Plan>>,
    /// Measured cost of one padded token in nanoseconds (0: not yet
    /// measured); see [`SentenceEncoder::ns_per_token`].
    ns_per_token: AtomicU64,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .field("max_tokens", &self.max_tokens)
            .field("shapes", &self.shapes)
            .finish()
    }
}

fn tract_err<'a>(model: &'a str, stage: &'static str) -> impl Fn(TractError) -> LoadError + 'a {
    move |e| LoadError::Model {
        model: model.to_owned(),
        stage,
        reason: format!("{e:#}"),
    }
}

impl SentenceEncoder {
    /// Builds the encoder from a verified model's bytes (and nothing else).
    pub fn new(model: &VerifiedModel, shapes: Shapes) -> Result<SentenceEncoder, LoadError> {
        let name = model.spec.name.clone();
        let started = Instant::now();
        let missing = |role: &str| LoadError::Model {
            model: name.clone(),
            stage: "files",
            reason: format!("no verified {role} file"),
        };
        let tok_bytes = &model
            .file(FileRole::Tokenizer)
            .ok_or_else(|| missing("tokenizer"))?
            .bytes;
        let onnx_bytes = &model
            .file(FileRole::Onnx)
            .ok_or_else(|| missing("onnx"))?
            .bytes;

        let mut tokenizer = Tokenizer::from_bytes(tok_bytes).map_err(|e| LoadError::Model {
            model: name.clone(),
            stage: "tokenizer",
            reason: e.to_string(),
        })?;
        // tokenizer.json carries padding and truncation of its own (fixed
        // 128): replace them. No padding here (batches are padded to their
        // longest text below); truncation at the model's max_tokens.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: model.spec.max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| LoadError::Model {
                model: name.clone(),
                stage: "tokenizer",
                reason: e.to_string(),
            })?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .unwrap_or(0);

        let inference = tract_onnx::onnx()
            .model_for_read(&mut &onnx_bytes[..])
            .map_err(tract_err(&name, "parse onnx"))?;
        let mut typed = inference
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(tract_err(&name, "type onnx"))?;
        check_signature(&name, &typed, model.spec.dimensions)?;
        let rewrites =
            crate::softmax::fuse(&mut typed).map_err(tract_err(&name, "fuse softmax"))?;
        let adds =
            crate::same_shape_add::fuse(&mut typed).map_err(tract_err(&name, "same-shape adds"))?;
        let layer_norms =
            crate::layer_norm::fuse(&mut typed).map_err(tract_err(&name, "layer norms"))?;
        let batch = typed.symbols.sym("batch");
        let sequence = typed.symbols.sym("sequence");
        let symbolic = typed
            .clone()
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(tract_err(&name, "optimize"))?;
        tracing::info!(
            model = %name,
            ms = started.elapsed().as_millis() as u64,
            masked_softmax = rewrites.masked,
            plain_softmax = rewrites.plain,
            same_shape_adds = adds,
            layer_norms,
            "model loaded"
        );
        Ok(SentenceEncoder {
            name,
            tokenizer,
            dimensions: model.spec.dimensions,
            max_tokens: model.spec.max_tokens,
            pad_id,
            typed,
            batch,
            sequence,
            symbolic,
            shapes,
            plans: Mutex::new(HashMap::new()),
            ns_per_token: AtomicU64::new(0),
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of one embedding.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Tokenizes one text: WordPiece ids with `[CLS]`/`[SEP]`, truncated at
    /// `max_tokens`, unpadded.
    pub fn tokenize(&self, text: &str) -> Result<Encoded, String> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| format!("tokenization failed: {}", redact(&e.to_string())))?;
        let ids = enc.get_ids();
        debug_assert!(ids.len() <= self.max_tokens);
        Ok(Encoded { ids: ids.to_vec() })
    }

    /// Embeds texts: tokenize, group by length, run each batch padded to its
    /// longest text, mean-pool over the attention mask, L2-normalise.
    /// Returns one vector per text, in input order. With more than one
    /// thread ([`crate::set_threads`]) the batches run on that many threads
    /// at once (split further if there are fewer batches than threads).
    ///
    /// Bounded before any model run: at most `limits.max_call_tokens` tokens
    /// in all, and, once this encoder has measured its speed, refused with
    /// [`InferenceFailure::WouldMissDeadline`] when the call cannot finish
    /// before `cancel`'s deadline. Stops with [`InferenceFailure::Cancelled`]
    /// at the first batch boundary after `cancel` is set.
    pub fn embed(
        &self,
        texts: &[String],
        limits: &Limits,
        cancel: &Cancel,
    ) -> Result<Vec<Vec<f32>>, InferenceFailure> {
        // Tokenize, refusing as soon as the call passes its token budget
        // (so a huge call costs little) or is cancelled.
        let mut encoded: Vec<Encoded> = Vec::with_capacity(texts.len());
        let mut total = 0usize;
        for text in texts {
            if cancel.is_cancelled() {
                return Err(InferenceFailure::Cancelled);
            }
            let e = self.tokenize(text).map_err(InferenceFailure::Internal)?;
            total += e.ids.len();
            if total > limits.max_call_tokens {
                return Err(InferenceFailure::InvalidInput(format!(
                    "more than max_call_tokens = {} tokens in one call (passed at text #{}): split the texts over several calls",
                    limits.max_call_tokens,
                    encoded.len()
                )));
            }
            encoded.push(e);
        }
        let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
        let mut batches = group_by_length(&lengths, limits.max_batch, limits.max_batch_tokens);
        let threads = crate::threads();
        if threads > 1 {
            split_for_threads(&mut batches, threads);
        }
        let padded: usize = batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum();
        self.check_time(padded, threads.min(batches.len()).max(1), cancel)?;
        let run = |batch: &Vec<usize>| -> Result<Vec<Vec<f32>>, InferenceFailure> {
            if cancel.is_cancelled() {
                return Err(InferenceFailure::Cancelled);
            }
            let rows: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].ids.as_slice()).collect();
            let started = Instant::now();
            let result = self.run_batch(&rows).map_err(InferenceFailure::Internal);
            let tokens = rows.len() * rows.iter().map(|r| r.len()).max().unwrap_or(0);
            self.record_speed(tokens, started.elapsed());
            result
        };
        let panicked = || InferenceFailure::Internal("an inference thread panicked".to_owned());
        let results: Vec<Result<Vec<Vec<f32>>, InferenceFailure>> =
            if threads > 1 && batches.len() > 1 {
                // Batch i goes to worker i % workers; each worker returns its
                // results in order.
                let workers = threads.min(batches.len());
                let per_worker: Vec<Vec<Result<Vec<Vec<f32>>, InferenceFailure>>> =
                    std::thread::scope(|s| {
                        let handles: Vec<_> = (0..workers)
                            .map(|w| {
                                let batches = &batches;
                                let run = &run;
                                s.spawn(move || {
                                    batches
                                        .iter()
                                        .skip(w)
                                        .step_by(workers)
                                        .map(run)
                                        .collect::<Vec<_>>()
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap_or_else(|_| vec![Err(panicked())]))
                            .collect()
                    });
                let mut iters: Vec<_> = per_worker.into_iter().map(Vec::into_iter).collect();
                (0..batches.len())
                    .map(|i| iters[i % workers].next().unwrap_or_else(|| Err(panicked())))
                    .collect()
            } else {
                batches.iter().map(run).collect()
            };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (batch, vectors) in batches.into_iter().zip(results) {
            for (i, v) in batch.into_iter().zip(vectors?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Refuses a call of `padded` tokens on `threads` threads that cannot
    /// end before `cancel`'s deadline at the speed this encoder measured.
    fn check_time(
        &self,
        padded: usize,
        threads: usize,
        cancel: &Cancel,
    ) -> Result<(), InferenceFailure> {
        if cancel.is_cancelled() {
            return Err(InferenceFailure::Cancelled);
        }
        let (Some(deadline), Some(ns_per_token)) = (cancel.deadline(), self.ns_per_token()) else {
            return Ok(());
        };
        let needed =
            Duration::from_nanos((padded as u64).saturating_mul(ns_per_token) / threads as u64);
        let left = deadline.saturating_duration_since(Instant::now());
        if needed > left {
            return Err(InferenceFailure::WouldMissDeadline {
                needed_ms: needed.as_millis() as u64,
                left_ms: left.as_millis() as u64,
            });
        }
        Ok(())
    }

    /// The measured cost of one padded token, once a batch has run.
    pub fn ns_per_token(&self) -> Option<u64> {
        match self.ns_per_token.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Folds one batch's speed into the estimate (moving average, weight
    /// 1/4 for the new sample). Batches under 64 tokens are too small to
    /// say much and are skipped.
    fn record_speed(&self, tokens: usize, took: Duration) {
        if tokens < 64 {
            return;
        }
        let sample = (took.as_nanos() / tokens as u128).clamp(1, u64::MAX as u128) as u64;
        let old = self.ns_per_token.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 3 + sample) / 4
        };
        self.ns_per_token.store(new.max(1), Ordering::Relaxed);
    }

    fn plan(&self, batch: usize, seq: usize) -> Result<Plan, String> {
        if self.shapes == Shapes::Symbolic {
            return Ok(Arc::clone(&self.symbolic));
        }
        let mut plans = self
            .plans
            .lock()
            .map_err(|_| "plan cache poisoned".to_owned())?;
        if let Some(p) = plans.get(&(batch, seq)) {
            return Ok(Arc::clone(p));
        }
        if plans.len() >= MAX_CACHED_PLANS {
            return Ok(Arc::clone(&self.symbolic));
        }
        let started = Instant::now();
        let subs: HashMap<Symbol, TDim> = [
            (self.batch.clone(), TDim::from(batch as i64)),
            (self.sequence.clone(), TDim::from(seq as i64)),
        ]
        .into_iter()
        .collect();
        let plan = self
            .typed
            .set_symbols(&subs)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("planning failed: {e}"))?;
        tracing::debug!(
            model = %self.name,
            batch,
            seq,
            ms = started.elapsed().as_millis() as u64,
            "planned a concrete shape"
        );
        plans.insert((batch, seq), Arc::clone(&plan));
        Ok(plan)
    }

    /// The graph's three inputs for `rows` padded to `s` tokens: token ids,
    /// attention mask, token types.
    fn inputs(&self, rows: &[&[u32]], s: usize) -> Result<TVec<TValue>, String> {
        let b = rows.len();
        let mut ids = vec![i64::from(self.pad_id); b * s];
        let mut mask = vec![0i64; b * s];
        for (r, row) in rows.iter().enumerate() {
            for (t, &id) in row.iter().enumerate() {
                ids[r * s + t] = i64::from(id);
                mask[r * s + t] = 1;
            }
        }
        let types = vec![0i64; b * s];
        let tensor = |v: Vec<i64>| -> Result<TValue, String> {
            tract_ndarray::Array2::from_shape_vec((b, s), v)
                .map(|a| a.into_tensor().into_tvalue())
                .map_err(|e| format!("input shape: {e}"))
        };
        Ok(tvec![tensor(ids)?, tensor(mask)?, tensor(types)?])
    }

    /// Runs the graph once over `rows` (padded to the longest, one thread) and
    /// returns the time each kind of operator took, by tract's name for the
    /// optimized operator, most expensive first. For `benches/profile.rs`
    /// (`bench/inference/ops`): where tract spends its time, next to
    /// onnxruntime's own profile of the same model.
    pub fn profile_batch(&self, rows: &[&[u32]]) -> Result<Vec<OpTime>, String> {
        let s = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if rows.is_empty() || s == 0 {
            return Ok(Vec::new());
        }
        let inputs = self.inputs(rows, s)?;
        let plan = self.plan(rows.len(), s)?;
        let mut state = plan
            .spawn()
            .map_err(|e| format!("model state: {}", redact(&format!("{e:#}"))))?;
        let mut by_op: HashMap<String, OpTime> = HashMap::new();
        state
            .run_plan_with_eval(inputs, |ctx, op_state, node, input| {
                let started = Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
                let took = started.elapsed();
                let name = node.op().name().to_string();
                let entry = by_op.entry(name.clone()).or_insert(OpTime {
                    op: name,
                    nodes: 0,
                    time: Duration::ZERO,
                });
                entry.nodes += 1;
                entry.time += took;
                out
            })
            .map_err(|e| format!("model run failed: {}", redact(&format!("{e:#}"))))?;
        let mut ops: Vec<OpTime> = by_op.into_values().collect();
        ops.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.op.cmp(&b.op)));
        Ok(ops)
    }

    /// Runs one batch (rows of token ids), padded to its longest row.
    pub fn run_batch(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let b = rows.len();
        let s = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if b == 0 || s == 0 {
            return Ok(vec![Vec::new(); b]);
        }
        let inputs = self.inputs(rows, s)?;
        let plan = self.plan(b, s)?;
        let outputs = plan
            .run(inputs)
            .map_err(|e| format!("model run failed: {}", redact(&format!("{e:#}"))))?;
        let hidden = outputs
            .first()
            .ok_or("model returned no output")?
            .to_plain_array_view::<f32>()
            .map_err(|e| format!("model output: {e}"))?;
        let shape = hidden.shape();
        if shape.len() != 3 || shape[0] != b || shape[1] != s || shape[2] != self.dimensions {
            return Err(format!(
                "model output has shape {shape:?}, expected [{b}, {s}, {}]",
                self.dimensions
            ));
        }
        let hidden = hidden.as_slice().ok_or("model output is not contiguous")?;
        let h = self.dimensions;
        let mut out = Vec::with_capacity(b);
        for (r, row) in rows.iter().enumerate() {
            // Mean pooling over the attention mask: the row's real tokens.
            let mut v = vec![0f32; h];
            for t in 0..row.len() {
                let start = (r * s + t) * h;
                for (acc, x) in v.iter_mut().zip(&hidden[start..start + h]) {
                    *acc += *x;
                }
            }
            let n = row.len() as f32;
            v.iter_mut().for_each(|x| *x /= n);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            out.push(v);
        }
        Ok(out)
    }
}

/// Error texts of the tokenizer or the model could in principle quote
/// input; keep only their first line and cap the length. Callers never pass
/// texts into error messages themselves.
fn redact(s: &str) -> String {
    let first = s.lines().next().unwrap_or_default();
    first.chars().take(120).collect()
}

fn check_signature(name: &str, model: &TypedModel, dims: usize) -> Result<(), LoadError> {
    let bad = |reason: String| LoadError::Model {
        model: name.to_owned(),
        stage: "signature",
        reason,
    };
    if model.inputs.len() != 3 || model.outputs.len() != 1 {
        return Err(bad(format!(
            "expected 3 inputs (input_ids, attention_mask, token_type_ids) and 1 output, found {} and {}",
            model.inputs.len(),
            model.outputs.len()
        )));
    }
    for (i, expected) in ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .enumerate()
    {
        let node = &model.nodes[model.inputs[i].node];
        let fact = model
            .outlet_fact(model.inputs[i])
            .map_err(|e| bad(format!("{e}")))?;
        if node.name != *expected || fact.datum_type != i64::datum_type() || fact.rank() != 2 {
            return Err(bad(format!(
                "input {i} is `{}` {:?} of rank {}, expected `{expected}` i64 [batch, sequence]",
                node.name,
                fact.datum_type,
                fact.rank()
            )));
        }
    }
    let out = model
        .outlet_fact(model.outputs[0])
        .map_err(|e| bad(format!("{e}")))?;
    let last = out.shape.iter().last().and_then(|d| d.to_usize().ok());
    if out.datum_type != f32::datum_type() || out.rank() != 3 || last != Some(dims) {
        return Err(bad(format!(
            "output is {:?} {:?}, expected f32 [batch, sequence, {dims}]",
            out.datum_type, out.shape
        )));
    }
    Ok(())
}
