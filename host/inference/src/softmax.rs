//! A fused "add the attention mask, then softmax over the last axis" operator
//! for tract, and the graph rewrite that puts it in place of the model's
//! `Add` + `Softmax` pairs.
//!
//! Why this exists (written by hand, not taken from tract): tract 0.23.9's
//! softmax has a vectorised whole-row kernel only for rows whose length is a
//! multiple of 4. An attention row is as long as the sequence (21 tokens for
//! a typical chat line), so every row takes a slow path of three small kernel
//! calls; and the mask add before it is a generic broadcasting add, because
//! with symbolic `batch` and `sequence` axes tract cannot prove its faster
//! binary kernels apply. Per-operator profiles (`bench/inference/ops`,
//! `docs/models.md`) put these two at 8–20 ms of a 16 × 21 batch that
//! onnxruntime runs in 2–3 ms. [`MaskedSoftmax`] does both in one operator,
//! row by row, for any row length, with a polynomial `exp` that the compiler
//! vectorises.
//!
//! Semantics: `softmax(x + bias)` along the last axis, where `bias` has the
//! rank of `x` and each of its axes is either as long as `x`'s or 1
//! (broadcast), and its last axis is as long as `x`'s. Without a bias it is
//! a plain last-axis softmax. `exp` is evaluated on arguments clamped to
//! [-87, 0] (after subtracting the row's maximum), so a masked position
//! (bias of `f32::MIN` or `-10000`) weighs at most 2⁻¹²⁶ relative to the
//! maximum instead of exactly 0 — far below the model's own precision. A row
//! that is entirely `-inf` comes out uniform instead of NaN.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

use crate::rewrite::{is_f32_bin, lane_sum, only_successor, LANES};

/// `softmax(x + bias)` over the last axis (see the module docs). Inputs:
/// `x`, and `bias` when `with_bias`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaskedSoftmax {
    /// Whether the op takes a second, broadcast input added before the
    /// softmax.
    pub with_bias: bool,
}

impl Op for MaskedSoftmax {
    fn name(&self) -> StaticName {
        if self.with_bias {
            "MaskedSoftmax".into()
        } else {
            "LastAxisSoftmax".into()
        }
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for MaskedSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let expected = if self.with_bias { 2 } else { 1 };
        ensure!(
            inputs.len() == expected,
            "{} takes {expected} inputs, got {}",
            self.name(),
            inputs.len()
        );
        let bias = if self.with_bias { inputs.pop() } else { None };
        let x = inputs.pop().context("no input")?;
        let mut out = x.into_tensor();
        let shape: TVec<usize> = out.shape().into();
        ensure!(!shape.is_empty(), "softmax of a scalar");
        ensure!(
            crate::rewrite::is_dense(&shape, out.strides()),
            "softmax input is not contiguous (shape {shape:?}, strides {:?})",
            out.strides()
        );
        let row_len = shape[shape.len() - 1];
        if shape.contains(&0) {
            return Ok(tvec!(out.into_tvalue()));
        }
        let mut plain = out.try_as_plain_ram_mut()?;
        let data = plain.as_slice_mut::<f32>()?;
        match bias {
            None => data
                .chunks_exact_mut(row_len)
                .for_each(|row| softmax_row(row, None)),
            Some(bias) => {
                let rows = RowBias::new(&shape, bias.shape())?;
                let b = bias.try_as_plain_ram()?;
                let b = b.as_slice::<f32>()?;
                ensure!(
                    b.len() == rows.bias_len,
                    "bias holds {} values, its shape says {}",
                    b.len(),
                    rows.bias_len
                );
                for (n, row) in data.chunks_exact_mut(row_len).enumerate() {
                    let start = rows.offset(n);
                    softmax_row(row, Some(&b[start..start + row_len]));
                }
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for MaskedSoftmax {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let x = inputs.first().context("no input")?;
        ensure!(
            x.datum_type == f32::datum_type(),
            "{} runs on f32, got {:?}",
            self.name(),
            x.datum_type
        );
        ensure!(x.rank() >= 1, "softmax of a scalar");
        if self.with_bias {
            let b = inputs.get(1).context("no bias input")?;
            ensure!(b.datum_type == f32::datum_type(), "bias is not f32");
            ensure!(
                broadcasts_into(&b.shape, &x.shape),
                "bias shape {:?} does not broadcast into {:?} along leading axes",
                b.shape,
                x.shape
            );
        }
        Ok(tvec!(f32::fact(x.shape.clone())))
    }
}

/// Whether `bias` has `x`'s rank, the same last axis, and every other axis
/// either equal to `x`'s or 1.
fn broadcasts_into(bias: &ShapeFact, x: &ShapeFact) -> bool {
    let r = x.rank();
    bias.rank() == r
        && r >= 1
        && bias[r - 1] == x[r - 1]
        && (0..r - 1).all(|a| bias[a] == x[a] || bias[a] == TDim::Val(1))
}

/// Where row `n` of `x` finds its bias row.
struct RowBias {
    /// `x`'s leading (non-last) axes, outermost first.
    dims: TVec<usize>,
    /// For each leading axis, the step in the bias buffer (0 when the bias
    /// is broadcast along it).
    steps: TVec<usize>,
    bias_len: usize,
}

impl RowBias {
    fn new(x: &[usize], bias: &[usize]) -> TractResult<RowBias> {
        let r = x.len();
        ensure!(
            bias.len() == r && bias[r - 1] == x[r - 1],
            "bias shape {bias:?} does not match {x:?}"
        );
        let mut steps: TVec<usize> = tvec![0; r - 1];
        let mut stride = bias[r - 1];
        for a in (0..r - 1).rev() {
            if bias[a] == x[a] {
                steps[a] = stride;
            } else {
                ensure!(
                    bias[a] == 1,
                    "bias shape {bias:?} does not broadcast into {x:?}"
                );
            }
            stride *= bias[a];
        }
        Ok(RowBias {
            dims: x[..r - 1].into(),
            steps,
            bias_len: stride,
        })
    }

    fn offset(&self, mut n: usize) -> usize {
        let mut offset = 0;
        for a in (0..self.dims.len()).rev() {
            offset += (n % self.dims[a]) * self.steps[a];
            n /= self.dims[a];
        }
        offset
    }
}

/// `row = softmax(row + bias)` in place.
fn softmax_row(row: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        for (x, b) in row.iter_mut().zip(bias) {
            *x += *b;
        }
    }
    // Maximum, in LANES independent lanes so that it vectorises.
    let mut maxes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, x) in maxes.iter_mut().zip(c) {
            *m = m.max(*x);
        }
    }
    let mut max = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for m in maxes {
        max = max.max(m);
    }
    if !max.is_finite() {
        // All -inf (or +inf/NaN present): fall back to a neutral maximum;
        // the clamp in `exp_neg` keeps every value finite.
        max = if max == f32::INFINITY { f32::MAX } else { 0.0 };
    }
    for x in row.iter_mut() {
        *x = exp_neg(*x - max);
    }
    let inv = 1.0 / lane_sum(row, |x| x);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// `e^x` for `x` ≤ 0 (arguments are clamped to [-87, 0]; NaN gives e^-87),
/// relative error about 2e-7. Cody–Waite range reduction and the Cephes
/// `expf` polynomial; branch-free so that loops over it vectorise.
#[inline(always)]
fn exp_neg(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Not `clamp`: it keeps NaN, and NaN must not reach the sum.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(0.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // n is in [-126, 0]: 2ⁿ is a normal float with exponent bits n + 127.
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    y * scale
}

/// What [`fuse`] changed in a graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrites {
    /// `Add` + `Softmax` pairs replaced by one [`MaskedSoftmax`].
    pub masked: usize,
    /// Lone last-axis `Softmax` nodes replaced.
    pub plain: usize,
}

/// Replaces every f32 last-axis `Softmax` of a typed model by
/// [`MaskedSoftmax`], folding in the `Add` that feeds it when that add only
/// feeds the softmax and its other operand broadcasts into the scores.
/// Nodes that do not match are left to tract.
pub fn fuse(model: &mut TypedModel) -> TractResult<Rewrites> {
    let mut done = Rewrites::default();
    loop {
        let Some((patch, masked)) = next_patch(model)? else {
            return Ok(done);
        };
        patch.apply(model)?;
        if masked {
            done.masked += 1;
        } else {
            done.plain += 1;
        }
    }
}

/// The patch for the first softmax still to rewrite, and whether it folds
/// an add in.
fn next_patch(model: &TypedModel) -> TractResult<Option<(TypedModelPatch, bool)>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(sm) = node.op_as::<Softmax>() else {
            continue;
        };
        let input = model.outlet_fact(node.inputs[0])?;
        let rank = input.rank();
        if sm.kind != SoftmaxKind::Softmax
            || sm.quant_output_dt.is_some()
            || input.datum_type != f32::datum_type()
            || rank == 0
            || *sm.axes != [rank - 1]
        {
            continue;
        }
        let mut patch = TypedModelPatch::new("masked softmax");
        if let Some((x, bias)) = foldable_add(model, node)? {
            let x = patch.tap_model(model, x)?;
            let bias = patch.tap_model(model, bias)?;
            let out = patch.wire_node(&node.name, MaskedSoftmax { with_bias: true }, &[x, bias])?;
            patch.shunt_outside(model, OutletId::new(node.id, 0), out[0])?;
            return Ok(Some((patch, true)));
        }
        let x = patch.tap_model(model, node.inputs[0])?;
        let out = patch.wire_node(&node.name, MaskedSoftmax { with_bias: false }, &[x])?;
        patch.shunt_outside(model, OutletId::new(node.id, 0), out[0])?;
        return Ok(Some((patch, false)));
    }
    Ok(None)
}

/// When `softmax`'s input is an f32 `Add` that feeds nothing else, its
/// operands as (scores, bias).
fn foldable_add(
    model: &TypedModel,
    softmax: &TypedNode,
) -> TractResult<Option<(OutletId, OutletId)>> {
    let outlet = softmax.inputs[0];
    let add = model.node(outlet.node);
    if !is_f32_bin::<Add>(add) || only_successor(model, outlet.node)?.is_none() {
        return Ok(None);
    }
    let out_shape = &model.outlet_fact(outlet)?.shape;
    let facts = [
        model.outlet_fact(add.inputs[0])?,
        model.outlet_fact(add.inputs[1])?,
    ];
    if facts.iter().any(|f| f.datum_type != f32::datum_type()) {
        return Ok(None);
    }
    for (xi, bi) in [(0, 1), (1, 0)] {
        if &facts[xi].shape == out_shape && broadcasts_into(&facts[bi].shape, out_shape) {
            return Ok(Some((add.inputs[xi], add.inputs[bi])));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::binary::TypedBinOp;

    /// Softmax of `x + bias` in f64 with the standard library's `exp`.
    fn reference(x: &[f32], bias: &[f32]) -> Vec<f32> {
        let v: Vec<f64> = x
            .iter()
            .zip(bias)
            .map(|(a, b)| *a as f64 + *b as f64)
            .collect();
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = v.iter().map(|a| (a - max).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|a| (a / s) as f32).collect()
    }

    /// Deterministic pseudo-random values in [-scale, scale].
    fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn exp_matches_std_over_its_range() {
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) / 10_000.0;
            let got = exp_neg(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp_neg(0.0), 1.0);
        // Clamped, never zero, never NaN.
        for x in [-88.0, -1e4, f32::MIN, f32::NEG_INFINITY, f32::NAN] {
            let y = exp_neg(x);
            assert!(y > 0.0 && y < 1e-37, "exp({x}) = {y}");
        }
    }

    #[test]
    fn rows_of_every_length_match_the_reference() {
        for len in 1..80 {
            for seed in 0..4 {
                let x = values(len, seed * 100 + len as u64, 12.0);
                // Mask out a few positions the way BERT exports do.
                let bias: Vec<f32> = (0..len)
                    .map(|j| {
                        if j > 0 && (j + seed as usize).is_multiple_of(5) {
                            f32::MIN
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let want = reference(&x, &bias);
                let mut got = x.clone();
                softmax_row(&mut got, Some(&bias));
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6 + 2e-6 * w, "len {len}: {g} vs {w}");
                }
                let sum: f32 = got.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "len {len}: sum {sum}");
            }
        }
    }

    #[test]
    fn degenerate_rows_stay_finite() {
        let mut all_masked = vec![f32::NEG_INFINITY; 7];
        softmax_row(&mut all_masked, None);
        assert!(all_masked.iter().all(|v| (v - 1.0 / 7.0).abs() < 1e-6));
        let mut huge = vec![f32::MAX, 0.0, f32::INFINITY];
        softmax_row(&mut huge, None);
        assert!(huge.iter().all(|v| v.is_finite()), "{huge:?}");
        let mut nan = vec![f32::NAN, 1.0, 2.0];
        softmax_row(&mut nan, None);
        assert!(nan.iter().all(|v| v.is_finite()), "{nan:?}");
        assert!((nan[2] - 0.731_058_6).abs() < 1e-6, "{nan:?}");
    }

    #[test]
    fn row_bias_broadcasts_like_numpy() {
        // x [2, 3, 4, 5], bias [2, 1, 1, 5]: row (b, h, i) reads bias row b.
        let rb = RowBias::new(&[2, 3, 4, 5], &[2, 1, 1, 5]).unwrap();
        for n in 0..24 {
            assert_eq!(rb.offset(n), (n / 12) * 5, "row {n}");
        }
        // bias [1, 3, 1, 5]: row (b, h, i) reads bias row h.
        let rb = RowBias::new(&[2, 3, 4, 5], &[1, 3, 1, 5]).unwrap();
        for n in 0..24 {
            assert_eq!(rb.offset(n), ((n / 4) % 3) * 5, "row {n}");
        }
        assert!(RowBias::new(&[2, 3, 4, 5], &[2, 2, 1, 5]).is_err());
        assert!(RowBias::new(&[2, 3, 4, 5], &[2, 1, 1, 4]).is_err());
    }

    /// A graph `softmax(scores + mask)` with symbolic axes, as tract sees the
    /// model's attention: the rewrite must fold the add, and give tract's
    /// own result.
    fn attention_like() -> TypedModel {
        let mut model = TypedModel::default();
        let b = model.symbols.sym("b");
        let s = model.symbols.sym("s");
        let scores = model
            .add_source(
                "scores",
                f32::fact(&[b.to_dim(), 3.to_dim(), s.to_dim(), s.to_dim()]),
            )
            .unwrap();
        let mask = model
            .add_source(
                "mask",
                f32::fact(&[b.to_dim(), 1.to_dim(), 1.to_dim(), s.to_dim()]),
            )
            .unwrap();
        let sum = model
            .wire_node("add", TypedBinOp(Box::new(Add), None), &[scores, mask])
            .unwrap();
        let out = model
            .wire_node(
                "softmax",
                Softmax::new(tvec![3], None, SoftmaxKind::Softmax),
                &sum,
            )
            .unwrap();
        model.select_output_outlets(&out).unwrap();
        model
    }

    #[test]
    fn rewrite_folds_the_mask_add_and_matches_tract() {
        let model = attention_like();
        let mut fused = model.clone();
        assert_eq!(
            fuse(&mut fused).unwrap(),
            Rewrites {
                masked: 1,
                plain: 0
            }
        );
        assert!(fused.nodes().iter().all(|n| !n.op_is::<Softmax>()));
        let (bs, ss) = (2usize, 21usize);
        let scores = values(bs * 3 * ss * ss, 7, 8.0);
        let mut mask = vec![0f32; bs * ss];
        for t in 15..ss {
            mask[ss + t] = f32::MIN; // the second text has 15 real tokens
        }
        let run = |m: TypedModel| -> Vec<f32> {
            crate::test_graph::run_f32(m, &[(&[bs, 3, ss, ss], &scores), (&[bs, 1, 1, ss], &mask)])
        };
        let want = run(model);
        let got = run(fused);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn add_feeding_something_else_is_not_folded() {
        let mut model = attention_like();
        // Also expose the add's result: folding it would lose it.
        let add = model.node_by_name("add").unwrap().id;
        let mut outputs = model.output_outlets().unwrap().to_vec();
        outputs.push(OutletId::new(add, 0));
        model.select_output_outlets(&outputs).unwrap();
        assert_eq!(
            fuse(&mut model).unwrap(),
            Rewrites {
                masked: 0,
                plain: 1
            }
        );
    }
}
