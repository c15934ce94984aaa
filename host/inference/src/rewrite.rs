//! What the graph rewrites and our operators share: applying one kind of
//! patch until none is left, and the memory-layout check of an input.

use tract_onnx::prelude::*;

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
}
