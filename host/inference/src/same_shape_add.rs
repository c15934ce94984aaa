//! An element-wise f32 `Add` of two tensors of the same shape, for tract,
//! and the rewrite that puts it in place of the model's residual adds.
//!
//! Why this exists (written by hand, not taken from tract): with symbolic
//! `batch` and `sequence` axes, tract 0.23.9 cannot prove that its fast
//! same-shape binary kernel applies (it wants a provable element count), so
//! each residual connection (`x + attention(x)`, `x + ffn(x)`) runs through
//! the generic broadcasting path: ~0.2 ms per add on a 16 × 21 × 384 batch,
//! 2.5–3 ms of a run (`bench/inference/ops`). The two shapes are equal by
//! construction (checked symbolically when the graph is rewritten, and
//! again on the real tensors at every run), so one zipped loop does it.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::math::Add;

use crate::rewrite::is_f32_bin;

/// `a + b` for two f32 tensors of the same shape (no broadcasting).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SameShapeAdd;

impl Op for SameShapeAdd {
    fn name(&self) -> StaticName {
        "SameShapeAdd".into()
    }

    op_as_typed_op!();
}

impl EvalOp for SameShapeAdd {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, b) = args_2!(inputs);
        ensure!(
            a.shape() == b.shape(),
            "SameShapeAdd: shapes {:?} and {:?} differ",
            a.shape(),
            b.shape()
        );
        let mut out = a.into_tensor();
        {
            let mut plain = out.try_as_plain_ram_mut()?;
            let out_data = plain.as_slice_mut::<f32>()?;
            let b_plain = b.try_as_plain_ram()?;
            let b_data = b_plain.as_slice::<f32>()?;
            ensure!(
                out_data.len() == b_data.len(),
                "SameShapeAdd: lengths differ"
            );
            for (x, y) in out_data.iter_mut().zip(b_data) {
                *x += *y;
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for SameShapeAdd {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 2, "SameShapeAdd takes 2 inputs");
        ensure!(
            inputs
                .iter()
                .all(|f| f.datum_type == f32::datum_type() && f.shape == inputs[0].shape),
            "SameShapeAdd needs two f32 inputs of one shape, got {:?}",
            inputs
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }
}

/// Replaces every f32 `Add` whose two operands have the same (symbolic)
/// shape and whose shape mentions a symbol, by [`SameShapeAdd`]. Adds tract
/// can already prove (concrete shapes) or that broadcast are left alone.
/// Returns how many were replaced.
pub fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    crate::rewrite::apply_all(model, next_patch)
}

fn next_patch(model: &TypedModel) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        if !is_f32_bin::<Add>(node) {
            continue;
        }
        let a = model.outlet_fact(node.inputs[0])?;
        let b = model.outlet_fact(node.inputs[1])?;
        if a.datum_type != f32::datum_type()
            || b.datum_type != f32::datum_type()
            || a.shape != b.shape
            || a.shape.as_concrete().is_some()
            || a.konst.is_some()
            || b.konst.is_some()
        {
            continue;
        }
        let mut patch = TypedModelPatch::new("same-shape add");
        let ta = patch.tap_model(model, node.inputs[0])?;
        let tb = patch.tap_model(model, node.inputs[1])?;
        let out = patch.wire_node(&node.name, SameShapeAdd, &[ta, tb])?;
        patch.shunt_outside(model, OutletId::new(node.id, 0), out[0])?;
        return Ok(Some(patch));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::binary::TypedBinOp;

    fn residual(rank_b: bool) -> TypedModel {
        let mut model = TypedModel::default();
        let b = model.symbols.sym("b");
        let s = model.symbols.sym("s");
        let x = model
            .add_source("x", f32::fact(&[b.to_dim(), s.to_dim(), 4.to_dim()]))
            .unwrap();
        let y_shape = if rank_b {
            f32::fact(&[b.to_dim(), s.to_dim(), 4.to_dim()])
        } else {
            f32::fact(&[1.to_dim(), 1.to_dim(), 4.to_dim()])
        };
        let y = model.add_source("y", y_shape).unwrap();
        let out = model
            .wire_node("add", TypedBinOp(Box::new(Add), None), &[x, y])
            .unwrap();
        model.select_output_outlets(&out).unwrap();
        model
    }

    fn run(model: TypedModel, x: &[f32], y: &[f32], y_shape: &[usize]) -> Vec<f32> {
        crate::test_graph::run_f32(model, &[(&[2, 3, 4], x), (y_shape, y)])
    }

    #[test]
    fn replaces_a_symbolic_same_shape_add_and_matches_tract() {
        let model = residual(true);
        let mut fused = model.clone();
        assert_eq!(fuse(&mut fused).unwrap(), 1);
        assert!(fused.nodes().iter().any(|n| n.op_is::<SameShapeAdd>()));
        let x: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let y: Vec<f32> = (0..24).map(|i| (i as f32).sin()).collect();
        assert_eq!(
            run(fused, &x, &y, &[2, 3, 4]),
            run(model, &x, &y, &[2, 3, 4])
        );
    }

    #[test]
    fn leaves_broadcasting_adds_to_tract() {
        let mut model = residual(false);
        assert_eq!(fuse(&mut model).unwrap(), 0);
    }

    #[test]
    fn refuses_tensors_whose_shapes_differ_at_run_time() {
        let x = Tensor::from_shape(&[2, 2], &[1f32, 2., 3., 4.]).unwrap();
        let y = Tensor::from_shape(&[1, 4], &[1f32, 2., 3., 4.]).unwrap();
        let err = SameShapeAdd
            .eval(
                &EvalContext::out_of_plan(),
                tvec![x.into_tvalue(), y.into_tvalue()],
            )
            .unwrap_err();
        assert!(format!("{err}").contains("differ"), "{err}");
    }
}
