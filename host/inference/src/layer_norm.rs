//! A fused layer normalisation operator for tract, and the graph rewrite
//! that puts it in place of the chain tract decomposes `LayerNormalization`
//! into.
//!
//! Why this exists (written by hand, not taken from tract): tract 0.23.9 has
//! no layer-norm operator. It declutters ONNX `LayerNormalization` into six
//! nodes: `Reduce<Sum>` over the last axis, a `Mul` by `1/D` (the mean), a
//! `Sub` (centre), `RmsNorm` (divide by `sqrt(mean(x²) + eps)`), a `Mul` by
//! `gamma` and an `Add` of `beta`. With symbolic `batch` and `sequence` axes
//! the centring and the scale-and-shift take tract's generic broadcasting
//! paths: on a 35-token sentence the 13 layer norms of all-MiniLM-L6-v2 cost
//! ~1.9 ms of a 15 ms run (`bench/inference/ops`, `docs/models.md`), where
//! one pass over the data costs a tenth of that. [`LayerNorm`] does the whole
//! chain row by row.
//!
//! Semantics: along the last axis (length `D`),
//! `y = (x − mean(x)) / sqrt(mean((x − mean(x))²) + eps) · gamma + beta`,
//! with `gamma` and `beta` constants of length `D`: exactly the chain it
//! replaces, computed in two passes (mean, then centred variance) as tract
//! does.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::BinMiniOp;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

use crate::rewrite::{is_f32_bin, lane_sum, only_successor};

/// Layer normalisation over the last axis (see the module docs). One input,
/// `x`; `gamma`, `beta` (f32, shape `[D]`) and `eps` (f32 scalar) are
/// constants of the operator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerNorm {
    /// Per-feature scale, shape `[D]`.
    pub gamma: Arc<Tensor>,
    /// Per-feature shift, shape `[D]`.
    pub beta: Arc<Tensor>,
    /// Added to the variance before the square root, f32 scalar.
    pub eps: Arc<Tensor>,
}

impl LayerNorm {
    /// The operator for these constants, or an error naming what is wrong
    /// with them (types, lengths, an `eps` that is not a scalar).
    pub fn new(gamma: Arc<Tensor>, beta: Arc<Tensor>, eps: Arc<Tensor>) -> TractResult<LayerNorm> {
        ensure!(
            gamma.datum_type() == f32::datum_type()
                && beta.datum_type() == f32::datum_type()
                && eps.datum_type() == f32::datum_type(),
            "LayerNorm constants must be f32"
        );
        ensure!(
            gamma.rank() == 1 && beta.shape() == gamma.shape(),
            "LayerNorm gamma {:?} and beta {:?} must be two vectors of one length",
            gamma.shape(),
            beta.shape()
        );
        ensure!(eps.len() == 1, "LayerNorm eps must be a scalar");
        Ok(LayerNorm { gamma, beta, eps })
    }

    fn features(&self) -> usize {
        self.gamma.len()
    }
}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        "LayerNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "features: {}, eps: {:?}",
            self.features(),
            self.eps
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let mut out = x.into_tensor();
        let shape: TVec<usize> = out.shape().into();
        let d = self.features();
        ensure!(
            shape.last() == Some(&d),
            "LayerNorm over {d} features got a tensor of shape {shape:?}"
        );
        ensure!(
            crate::rewrite::is_dense(&shape, out.strides()),
            "LayerNorm input is not contiguous (shape {shape:?}, strides {:?})",
            out.strides()
        );
        if d == 0 || shape.contains(&0) {
            return Ok(tvec!(out.into_tvalue()));
        }
        let eps = self.eps.cast_to_scalar::<f32>()?;
        let gamma = self.gamma.try_as_plain_ram()?;
        let gamma = gamma.as_slice::<f32>()?;
        let beta = self.beta.try_as_plain_ram()?;
        let beta = beta.as_slice::<f32>()?;
        let mut plain = out.try_as_plain_ram_mut()?;
        let data = plain.as_slice_mut::<f32>()?;
        for row in data.chunks_exact_mut(d) {
            layer_norm_row(row, gamma, beta, eps);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for LayerNorm {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1, "LayerNorm takes 1 input");
        let x = inputs[0];
        ensure!(
            x.datum_type == f32::datum_type(),
            "LayerNorm runs on f32, got {:?}",
            x.datum_type
        );
        ensure!(
            x.rank() >= 1 && x.shape[x.rank() - 1] == self.features().to_dim(),
            "LayerNorm over {} features cannot take shape {:?}",
            self.features(),
            x.shape
        );
        Ok(tvec!(f32::fact(x.shape.clone())))
    }

    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        // Leading axes pass through; the last is reduced over and must stay
        // whole (tract may not split or move it).
        let rank = inputs[0].rank();
        let mut mapping = AxesMapping::disconnected(inputs, outputs)?;
        for axis in 0..rank.saturating_sub(1) {
            mapping = mapping.linking((InOut::In(0), axis), (InOut::Out(0), axis))?;
        }
        Ok(mapping)
    }
}

/// `row = (row − mean) / sqrt(var + eps) · gamma + beta`, in place.
/// `gamma` and `beta` are as long as `row` (checked by the caller).
fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |x| x) / n;
    let var = lane_sum(row, |x| (x - mean) * (x - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * inv * *g + *b;
    }
}

/// Replaces every layer-norm chain of a typed, decluttered model (see the
/// module docs) by one [`LayerNorm`]. A chain matches only when every
/// intermediate node feeds nothing but the next one, the mean's factor is
/// `1/D`, and `gamma` and `beta` are constants of length `D`; anything else
/// is left to tract. Returns how many were replaced.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    crate::rewrite::apply_all(model, next_patch)
}

fn next_patch(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let Some(chain) = chain_at(model, id)? else {
            continue;
        };
        let mut patch = TypedModelPatch::new("layer norm");
        let x = patch.tap_model(model, chain.x)?;
        let op = LayerNorm::new(chain.gamma, chain.beta, chain.eps)?;
        let out = patch.wire_node(&model.node(chain.last).name, op, &[x])?;
        patch.shunt_outside(model, OutletId::new(chain.last, 0), out[0])?;
        return Ok(Some(patch));
    }
    Ok(None)
}

/// A layer-norm chain found in the graph.
struct Chain {
    /// The normalised input.
    x: OutletId,
    gamma: Arc<Tensor>,
    beta: Arc<Tensor>,
    eps: Arc<Tensor>,
    /// The chain's final `Add` (its output is replaced).
    last: usize,
}

/// The chain starting at node `id`, when `id` is the `Reduce<Sum>` of one.
fn chain_at(model: &TypedModel, id: usize) -> TractResult<Option<Chain>> {
    let reduce_node = model.node(id);
    let Some(reduce) = reduce_node.op_as::<Reduce>() else {
        return Ok(None);
    };
    let x = reduce_node.inputs[0];
    let x_fact = model.outlet_fact(x)?;
    let rank = x_fact.rank();
    if reduce.reducer != Reducer::Sum
        || rank == 0
        || *reduce.axes != [rank - 1]
        || x_fact.datum_type != f32::datum_type()
    {
        return Ok(None);
    }
    let Ok(d) = x_fact.shape[rank - 1].to_usize() else {
        return Ok(None);
    };
    if d == 0 {
        return Ok(None);
    }
    // mean = sum · (1/D)
    let Some((mean, factor)) = bin_with_const::<Mul>(model, id)? else {
        return Ok(None);
    };
    let Some(factor) = scalar_f32(&factor) else {
        return Ok(None);
    };
    if (factor - 1.0 / d as f32).abs() > f32::EPSILON / d as f32 {
        return Ok(None);
    }
    // centred = x − mean
    let Some(sub) = only_successor(model, mean)? else {
        return Ok(None);
    };
    let sub_node = model.node(sub);
    if !is_f32_bin::<Sub>(sub_node) || sub_node.inputs[..] != [x, OutletId::new(mean, 0)] {
        return Ok(None);
    }
    // normalised = centred / sqrt(mean(centred²) + eps)
    let Some(rms) = only_successor(model, sub)? else {
        return Ok(None);
    };
    let Some(rms_op) = model.node(rms).op_as::<RmsNorm>() else {
        return Ok(None);
    };
    if rms_op.axis != rank - 1 || rms_op.eps.len() != 1 {
        return Ok(None);
    }
    let eps = rms_op.eps.cast_to::<f32>()?.into_owned().into_shape(&[])?;
    // scaled = normalised · gamma; y = scaled + beta
    let Some((scaled, gamma)) = bin_with_const::<Mul>(model, rms)? else {
        return Ok(None);
    };
    let Some((last, beta)) = bin_with_const::<Add>(model, scaled)? else {
        return Ok(None);
    };
    let (Some(gamma), Some(beta)) = (feature_vector(&gamma, d)?, feature_vector(&beta, d)?) else {
        return Ok(None);
    };
    Ok(Some(Chain {
        x,
        gamma,
        beta,
        eps: eps.into_arc_tensor(),
        last,
    }))
}

/// When `id` feeds only a `B` whose other operand is a constant: that node
/// and the constant.
fn bin_with_const<B: BinMiniOp>(
    model: &TypedModel,
    id: usize,
) -> TractResult<Option<(usize, Arc<Tensor>)>> {
    let Some(next) = only_successor(model, id)? else {
        return Ok(None);
    };
    let node = model.node(next);
    if !is_f32_bin::<B>(node) {
        return Ok(None);
    }
    let other = match node.inputs[..] {
        [a, b] if a.node == id => b,
        [a, b] if b.node == id => a,
        _ => return Ok(None),
    };
    Ok(model.outlet_fact(other)?.konst.clone().map(|k| (next, k)))
}

/// The value of an f32 tensor holding one value.
fn scalar_f32(t: &Tensor) -> Option<f32> {
    if t.datum_type() != f32::datum_type() || t.len() != 1 {
        return None;
    }
    t.cast_to_scalar::<f32>().ok()
}

/// An f32 constant of shape `[1, …, 1, d]` as a vector of length `d`.
fn feature_vector(t: &Arc<Tensor>, d: usize) -> TractResult<Option<Arc<Tensor>>> {
    let shape = t.shape();
    if t.datum_type() != f32::datum_type()
        || shape.last() != Some(&d)
        || shape[..shape.len() - 1].iter().any(|&a| a != 1)
    {
        return Ok(None);
    }
    Ok(Some(
        t.clone().into_tensor().into_shape(&[d])?.into_arc_tensor(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_graph::run_f32;
    use tract_onnx::tract_core::ops::math::{add, mul, sub};

    const D: usize = 6;
    const GAMMA: [f32; D] = [0.5, 1.0, 1.5, -0.25, 2.0, 0.75];
    const BETA: [f32; D] = [0.1, -0.2, 0.0, 0.3, -0.05, 1.0];

    fn reference(row: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
        let n = row.len() as f64;
        let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = row
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let inv = 1.0 / (var + eps).sqrt();
        row.iter()
            .zip(gamma)
            .zip(beta)
            .map(|((&x, &g), &b)| {
                ((f64::from(x) - mean) * inv * f64::from(g) + f64::from(b)) as f32
            })
            .collect()
    }

    /// Deterministic test values with a large common offset, which a
    /// one-pass `E[x²] − E[x]²` variance would get wrong.
    fn values(len: usize, seed: u32, offset: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                offset + (s % 20_000) as f32 / 1000.0 - 10.0
            })
            .collect()
    }

    #[test]
    fn rows_of_every_length_match_an_f64_reference() {
        for len in 1..=80 {
            for (seed, offset) in [(1, 0.0), (2, 1000.0), (3, -3.5)] {
                let x = values(len, seed + len as u32, offset);
                let gamma: Vec<f32> = (0..len).map(|i| 0.5 + i as f32 / 64.0).collect();
                let beta: Vec<f32> = (0..len).map(|i| i as f32 / 128.0 - 0.3).collect();
                let want = reference(&x, &gamma, &beta, 1e-12);
                let mut got = x.clone();
                layer_norm_row(&mut got, &gamma, &beta, 1e-12);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 2e-4 * (1.0 + w.abs()),
                        "len {len}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_constant_row_gives_beta() {
        let mut row = [4.0f32; D];
        layer_norm_row(&mut row, &GAMMA, &BETA, 1e-12);
        assert_eq!(row, BETA);
    }

    /// The chain tract declutters `LayerNormalization` into, over
    /// `[b, s, D]` with symbolic `b` and `s`. `sub_feeds_out` also makes
    /// the centred value a second model output; `factor` is the mean's
    /// multiplier (1/D for a real layer norm).
    fn chain(sub_feeds_out: bool, factor: f32) -> TypedModel {
        let mut model = TypedModel::default();
        let b = model.symbols.sym("b");
        let s = model.symbols.sym("s");
        let x = model
            .add_source("x", f32::fact(&[b.to_dim(), s.to_dim(), D.to_dim()]))
            .unwrap();
        let sum = model
            .wire_node(
                "sum",
                Reduce {
                    axes: tvec![2],
                    reducer: Reducer::Sum,
                },
                &[x],
            )
            .unwrap();
        let k = model
            .add_const("k", tensor3(&[[[factor]]]).into_arc_tensor())
            .unwrap();
        let mean = model.wire_node("mean", mul(), &[sum[0], k]).unwrap();
        let d = model.wire_node("d", sub(), &[x, mean[0]]).unwrap();
        let rms = model
            .wire_node(
                "rms",
                RmsNorm {
                    axis: 2,
                    eps: rctensor0(1e-12f32),
                },
                &d,
            )
            .unwrap();
        let g = model
            .add_const(
                "g",
                Tensor::from_shape(&[1, 1, D], &GAMMA)
                    .unwrap()
                    .into_arc_tensor(),
            )
            .unwrap();
        let scaled = model.wire_node("scaled", mul(), &[rms[0], g]).unwrap();
        let beta = model
            .add_const(
                "beta",
                Tensor::from_shape(&[1, 1, D], &BETA)
                    .unwrap()
                    .into_arc_tensor(),
            )
            .unwrap();
        let y = model.wire_node("y", add(), &[scaled[0], beta]).unwrap();
        let mut outputs = vec![y[0]];
        if sub_feeds_out {
            outputs.push(d[0]);
        }
        model.select_output_outlets(&outputs).unwrap();
        model
    }

    fn count(model: &TypedModel) -> usize {
        model
            .nodes
            .iter()
            .filter(|n| n.op_is::<LayerNorm>())
            .count()
    }

    #[test]
    fn the_rewrite_gives_what_tract_computes() {
        let x = values(2 * 3 * D, 7, 50.0);
        let before = chain(false, 1.0 / D as f32);
        let want = run_f32(before.clone(), &[(&[2, 3, D], &x)]);
        let mut after = before;
        assert_eq!(fuse(&mut after).unwrap(), 1);
        assert_eq!(count(&after), 1);
        assert!(!after.nodes.iter().any(|n| n.op_is::<RmsNorm>()));
        let got = run_f32(after, &[(&[2, 3, D], &x)]);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn a_chain_whose_parts_feed_other_nodes_is_left_to_tract() {
        let mut model = chain(true, 1.0 / D as f32);
        assert_eq!(fuse(&mut model).unwrap(), 0);
        assert_eq!(count(&model), 0);
    }

    #[test]
    fn a_mean_with_the_wrong_factor_is_left_to_tract() {
        let mut model = chain(false, 1.0 / (D + 1) as f32);
        assert_eq!(fuse(&mut model).unwrap(), 0);
    }

    #[test]
    fn the_constants_are_checked() {
        let v = |n: usize| {
            Tensor::from_shape(&[n], &vec![1f32; n])
                .unwrap()
                .into_arc_tensor()
        };
        assert!(LayerNorm::new(v(4), v(3), rctensor0(1e-5f32)).is_err());
        assert!(LayerNorm::new(v(4), v(4), v(2)).is_err());
        assert!(LayerNorm::new(v(4), v(4), rctensor0(1e-5f64)).is_err());
        assert!(LayerNorm::new(v(4), v(4), rctensor0(1e-5f32)).is_ok());
    }

    #[test]
    fn a_tensor_of_the_wrong_width_is_an_error_not_a_panic() {
        let op = LayerNorm::new(
            Tensor::from_shape(&[D], &GAMMA).unwrap().into_arc_tensor(),
            Tensor::from_shape(&[D], &BETA).unwrap().into_arc_tensor(),
            rctensor0(1e-12f32),
        )
        .unwrap();
        let x = Tensor::from_shape(&[2, D + 1], &[1f32; 2 * (D + 1)]).unwrap();
        let err = op
            .eval(&EvalContext::out_of_plan(), tvec![x.into_tvalue()])
            .unwrap_err();
        assert!(err.to_string().contains("features"), "{err}");
    }
}
