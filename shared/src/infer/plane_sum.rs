//! fovea's plane sums inside tract: an op summing each `H×W` plane of an f32 tensor with
//! [`crate::lane_sum::sum_map`] (the host's squeeze-excitation means use the same sum), and
//! [`replace`], the model patch that puts it in place of tract's `Reduce<Sum>` over the two
//! trailing axes before tract optimizes the model.
//!
//! Why: squeeze-excitation averages every plane of every MBConv block, and tract 0.23.9 sums
//! them with ndarray's `sum_axis`, lane by lane in scalar code: 17 `Reduce<Sum>` nodes took
//! 0.68 ms of a 16.5 ms B0 run at 224 px on one thread (`edge/examples/node_profile.rs`),
//! against 0.22 ms for onnxruntime's `GlobalAveragePool`s (its profiler, same model). The
//! shared sum keeps eight lanes and vectorizes.
//!
//! The values are a sum's within its rounding, not tract's bit for bit (ndarray associates the
//! sum its own way; tested below within `(n + 1)·ε·Σ|x|`). The mean's `1/(H·W)` stays tract's
//! multiplication after the op. Planes split over tract's executor's rayon pool when it has
//! one.
use crate::lane_sum::sum_map;
use rayon::prelude::*;
use tract_core::internal::*;
use tract_core::ops::nn::{Reduce, Reducer};
use tract_linalg::multithread::{Executor, current_tract_executor};

/// The sum over the two trailing axes of an f32 tensor of concrete shape, those axes kept
/// with size 1 (as tract's `Reduce` keeps them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneSum {
    /// The input's shape, rank ≥ 2.
    input: TVec<usize>,
}

impl PlaneSum {
    /// Values per plane.
    fn plane(&self) -> usize {
        let r = self.input.len();
        self.input[r - 2] * self.input[r - 1]
    }

    /// The output's shape: the input's with the two trailing axes 1.
    fn output(&self) -> TVec<usize> {
        let mut shape = self.input.clone();
        let r = shape.len();
        shape[r - 2] = 1;
        shape[r - 1] = 1;
        shape
    }
}

impl Op for PlaneSum {
    fn name(&self) -> StaticName {
        "FoveaPlaneSum".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.input)])
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneSum {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let plane = self.plane();
        let planes = self.output().iter().product::<usize>();
        ensure!(x.len() == plane * planes, "FoveaPlaneSum: input length");
        let mut sums = vec![0.0f32; planes];
        let sum = |(s, p): (&mut f32, &[f32])| *s = sum_map(p, |v| v);
        if plane == 0 {
            // Empty planes sum to zero (`chunks_exact(0)` would panic).
        } else if let Executor::MultiThread(pool) = current_tract_executor() {
            pool.install(|| {
                sums.par_iter_mut()
                    .zip(x.par_chunks_exact(plane))
                    .for_each(sum)
            });
        } else {
            sums.iter_mut().zip(x.chunks_exact(plane)).for_each(sum);
        }
        let y = tract_ndarray::ArrayD::from_shape_vec(&*self.output(), sums)?;
        Ok(tvec!(y.into_tensor().into_tvalue()))
    }
}

impl TypedOp for PlaneSum {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&self.input[..]),
            "FoveaPlaneSum expects f32 {:?}, got {inputs:?}",
            self.input
        );
        Ok(tvec!(f32::fact(&*self.output())))
    }

    as_op!();
}

/// Replaces every `Reduce<Sum>` of `model` over exactly the two trailing axes of an f32 input
/// of concrete shape with [`PlaneSum`]; returns how many. Other reductions stay tract's.
pub fn replace(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(reduce) = node.op_as::<Reduce>() else {
            continue;
        };
        let x = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = x.shape.as_concrete() else {
            continue;
        };
        let r = shape.len();
        if reduce.reducer != Reducer::Sum
            || x.datum_type != f32::datum_type()
            || r < 2
            || reduce.axes[..] != [r - 2, r - 1]
        {
            continue;
        }
        let op = PlaneSum {
            input: shape.into(),
        };
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::depthwise::tests::values;
    use crate::infer::pointwise::tests::{f32s, on_threads, run_tensor};

    /// A model of tract's `Reduce<Sum>` over `axes` of an f32 input of `shape`.
    fn model(shape: &[usize], axes: &[usize]) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(shape)).unwrap();
        let op = Reduce::new(axes.into(), Reducer::Sum);
        let y = model.wire_node("sum", op, &[x]).unwrap()[0];
        model.select_output_outlets(&[y]).unwrap();
        model
    }

    /// [`run_tensor`]'s output values, its shape and the op names.
    fn run(model: TypedModel, input: &Tensor) -> (Vec<f32>, Vec<usize>, Vec<String>) {
        let (out, names) = run_tensor(model, input);
        (f32s(&out), out.shape().to_vec(), names)
    }

    /// Each plane's sum is the sum in f64 within `(n + 1)·ε·Σ|x|` (n values per plane), and so
    /// is tract's; the output keeps tract's shape. B0's first and last squeeze-excitation
    /// planes (112×112 with the batch axis, 7×7 without), a plane shorter than eight values,
    /// one and two threads.
    #[test]
    fn sums_each_plane_within_the_rounding_of_the_sum() {
        for (i, shape) in [vec![1, 3, 112, 112], vec![40, 7, 7], vec![5, 1, 3]]
            .into_iter()
            .enumerate()
        {
            let r = shape.len();
            let len = shape.iter().product::<usize>();
            let plane = shape[r - 2] * shape[r - 1];
            let x = values(len, 30 + i as u32);
            let input = tract_ndarray::ArrayD::from_shape_vec(shape.clone(), x.clone())
                .unwrap()
                .into_tensor();
            for threads in [1, 2] {
                let tract_model = model(&shape, &[r - 2, r - 1]);
                let mut patched = tract_model.clone();
                assert_eq!(replace(&mut patched).unwrap(), 1);
                let ((tract, tract_shape, _), (ours, our_shape, names)) =
                    on_threads(threads, || (run(tract_model, &input), run(patched, &input)));
                assert!(names.iter().any(|n| n == "FoveaPlaneSum"), "{names:?}");
                assert_eq!(our_shape, tract_shape);
                for (k, p) in x.chunks_exact(plane).enumerate() {
                    let exact = p.iter().map(|&v| f64::from(v)).sum::<f64>();
                    let size = p.iter().map(|&v| f64::from(v).abs()).sum::<f64>();
                    let bound = (plane + 1) as f64 * f64::from(f32::EPSILON) * size;
                    for (who, v) in [("fovea", ours[k]), ("tract", tract[k])] {
                        let err = (f64::from(v) - exact).abs();
                        assert!(
                            err <= bound,
                            "{shape:?} {threads} threads: {who} plane {k} = {v}, exact {exact}, off {err:e} > {bound:e}"
                        );
                    }
                }
            }
        }
    }

    /// Sums over other axes (one trailing axis, the channels) stay tract's.
    #[test]
    fn other_reductions_stay_tracts() {
        assert_eq!(replace(&mut model(&[4, 6, 6], &[2])).unwrap(), 0);
        assert_eq!(replace(&mut model(&[4, 6, 6], &[0, 1])).unwrap(), 0);
        assert_eq!(replace(&mut model(&[4, 6, 6], &[0, 1, 2])).unwrap(), 0);
    }
}
