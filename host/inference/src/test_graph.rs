//! Test helper: run a small typed graph through tract's optimizer and plan.

use tract_onnx::prelude::*;

/// Optimizes and runs `model` on f32 `inputs` (shape, values); returns its
/// first output's values.
pub(crate) fn run_f32(model: TypedModel, inputs: &[(&[usize], &[f32])]) -> Vec<f32> {
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();
    let inputs: TVec<TValue> = inputs
        .iter()
        .map(|(shape, values)| Tensor::from_shape(shape, values).unwrap().into_tvalue())
        .collect();
    let out = plan.run(inputs).unwrap();
    out[0]
        .try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec()
}
