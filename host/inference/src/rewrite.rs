//! What the graph rewrites and our operators share: applying one kind of
//! patch until none is left, the node checks the rewrites match with, the
//! memory-layout check of an input, and the lane-wise sum of a row.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};

/// Applies the patch `next` finds, again and again, until it finds none;
/// returns how many were applied.
pub(crate) fn apply_all(
    model: &mut TypedModel,
    next: impl Fn(&TypedModel) -> TractResult<Option<TypedModelPatch>>,
) -> TractResult<usize> {
    let mut done = 0;
    while let Some(patch) = next(model)? {
        patch.apply(model)?;
        done += 1;
    }
    Ok(done)
}

/// Whether `node` is tract's two-input binary `B` computing in f32 (or in
/// its inputs' type); the operand types are the caller's to check.
pub(crate) fn is_f32_bin<B: BinMiniOp>(node: &TypedNode) -> bool {
    node.inputs.len() == 2
        && node
            .op_as::<TypedBinOp>()
            .is_some_and(|bin| bin.0.is::<B>() && bin.1.is_none_or(|dt| dt == f32::datum_type()))
}

/// The only node fed by `id`'s single output, when `id` has one output and
/// it is not a model output.
pub(crate) fn only_successor(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let node = model.node(id);
    if node.outputs.len() != 1 || model.outputs.contains(&OutletId::new(id, 0)) {
        return Ok(None);
    }
    Ok(match model.outlet_successors(OutletId::new(id, 0)) {
        [only] => Some(only.node),
        _ => None,
    })
}

/// How many independent partial sums [`lane_sum`] keeps: enough for the
/// compiler to vectorise the loop.
pub(crate) const LANES: usize = 8;

/// Sum of `f(x)` over `row`, in [`LANES`] independent lanes so that it
/// vectorises: lane `i` adds the values at `i`, `i + LANES`, …, then the
/// tail and the lanes are added.
#[inline(always)]
pub(crate) fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (s, x) in sums.iter_mut().zip(c) {
            *s += f(*x);
        }
    }
    chunks.remainder().iter().map(|&x| f(x)).sum::<f32>() + sums.iter().sum::<f32>()
}

/// Whether a tensor of `shape` with `strides` lies in memory in natural
/// (row-major) order. Axes of length 1 may carry any stride: tract's matrix
/// products leave such strides on their outputs, and they do not change
/// where any value is.
pub(crate) fn is_dense(shape: &[usize], strides: &[isize]) -> bool {
    let natural = Tensor::natural_strides(shape);
    shape.len() == strides.len()
        && shape
            .iter()
            .zip(strides.iter().zip(natural.iter()))
            .all(|(&len, (s, n))| len == 1 || s == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_of_unit_axes_do_not_matter() {
        assert!(is_dense(&[1, 3, 4], &[7, 4, 1]));
        assert!(is_dense(&[2, 3, 4], &[12, 4, 1]));
        assert!(!is_dense(&[2, 3, 4], &[4, 8, 1]));
        assert!(!is_dense(&[2, 3, 4], &[12, 4]));
    }

    #[test]
    fn lane_sum_adds_every_value_once() {
        for n in 0usize..40 {
            let row: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let want = (n * n.saturating_sub(1) / 2) as f32;
            assert_eq!(lane_sum(&row, |x| x), want, "n = {n}");
            let squares = (0..n).map(|i| (i * i) as f32).sum::<f32>();
            assert_eq!(lane_sum(&row, |x| x * x), squares, "n = {n}");
        }
    }
}
