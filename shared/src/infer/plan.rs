//! tract with fovea's ops in place: an ONNX model typed with its input fixed to `1×3×S×S` f32,
//! decluttered, fovea's ops placed, optimized and planned. The device's screener and `edge
//! bench` load models through here, and so does `host quantize`'s accuracy gate, so the gate
//! scores the arithmetic that will ship (the `compute` form's integer sums, not tract's f32
//! chain).
use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::InferError;

/// A model ready to run at batch 1.
pub type Plan = Arc<TypedRunnableModel>;

/// Loads `proto` with the input fixed to `[1, 3, side, side]`, optimized. Constant weight
/// dequantization is folded first ([`crate::onnx::dequant`]); the depthwise convolutions run
/// fovea's kernel ([`super::depthwise`]), and the 1×1 convolutions on planes at least as large as
/// their output channels run on gemm ([`super::pointwise`]); a `compute` model's quantized 1×1
/// convolutions run in integers ([`super::int8_pointwise`]); squeeze-excitation's plane sums run
/// on the lane sum the host's means use ([`super::plane_sum`]) and its gate scales the weights of
/// fovea's 1×1 projection after it ([`super::se_gate`]); a ReLU6 after a fovea conv is
/// clamped inside it ([`super::activation`]); a large expansion and the depthwise conv reading
/// it run as one op, band by band ([`super::expand_depthwise`]), and so do the stem and the
/// depthwise conv reading it ([`super::stem_depthwise`]). Taking the message (not the file's
/// bytes) lets the caller free the bytes before tract copies the weights: the peak of a load
/// holds the folded message and tract's copy of its weights, nothing more.
pub fn load_proto(proto: ModelProto, side: usize) -> Result<Plan, InferError> {
    plan_decluttered(decluttered(proto, side)?)
}

/// tract's decluttered form of `proto` ([`typed()`]), fovea's depthwise op placed during the
/// declutter ([`super::depthwise::declutter`]: on aarch64 tract alone would turn the model
/// channels-last): what [`load_proto`] places fovea's other ops in.
pub fn decluttered(proto: ModelProto, side: usize) -> Result<TypedModel, InferError> {
    let mut model = typed(proto, side)?;
    super::depthwise::declutter(&mut model).map_err(tract("tract cannot declutter the model"))?;
    Ok(model)
}

/// tract's typed form of `proto`, not yet decluttered: the input fixed to `[1, 3, side, side]`,
/// the constant weight dequantization folded first.
pub fn typed(mut proto: ModelProto, side: usize) -> Result<TypedModel, InferError> {
    let shape = [1, 3, side, side];
    if let Some(graph) = proto.graph.as_mut() {
        crate::onnx::dequant::fold_constant_dequantize(graph)?;
    }
    let model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .map_err(tract("tract cannot read the ONNX model"))?;
    drop(proto);
    model
        .with_input_fact(0, f32::fact(shape).into())
        .map_err(tract(
            "tract cannot fix the model input to [1, 3, side, side]",
        ))?
        .into_typed()
        .map_err(tract("tract cannot type the model"))
}

/// Places fovea's ops in tract's decluttered `model` (the ones [`load_proto`] lists), then
/// optimizes and plans it.
pub fn plan_decluttered(mut model: TypedModel) -> Result<Plan, InferError> {
    super::int8_pointwise::replace(&mut model)
        .map_err(tract("placing fovea's int8 1×1 convolutions"))?;
    super::depthwise::replace(&mut model)
        .map_err(tract("placing fovea's depthwise convolution"))?;
    super::pointwise::replace(&mut model).map_err(tract("placing fovea's 1×1 convolutions"))?;
    super::dense_conv::replace(&mut model).map_err(tract("placing fovea's k×k convolution"))?;
    super::plane_sum::replace(&mut model).map_err(tract("placing fovea's plane sums"))?;
    super::se_gate::fold(&mut model).map_err(tract(
        "folding squeeze-excitation's gates into the projections",
    ))?;
    super::activation::fuse(&mut model).map_err(tract("fusing ReLU6 into fovea's convolutions"))?;
    super::expand_depthwise::fuse(&mut model)
        .map_err(tract("fusing expansions with their depthwise convolutions"))?;
    super::stem_depthwise::fuse(&mut model)
        .map_err(tract("fusing the stem with its depthwise convolution"))?;
    super::fake_quant::fuse(&mut model).map_err(tract("fusing uint8 quantize-dequantize pairs"))?;
    model
        .into_optimized()
        .map_err(tract("tract cannot optimize the model"))?
        .into_runnable()
        .map_err(tract("tract cannot plan the model"))
}

/// `proto` as specified, with none of fovea's ops: tract's own, constant weight dequantization
/// folded first, the input fixed to `[1, 3, side, side]`, optimized and planned. Its outputs are
/// the tensors named in `outputs`, in that order (graph inputs or node outputs), or the model's
/// own when `outputs` is empty. `host quantize`'s calibration observes the fp32 model's
/// activations through it, `--reference` computes `spec_logits` with it, and
/// `edge/examples/layer_diff.rs` holds the device's plan ([`load_proto`]) to it.
pub fn load_spec(
    mut proto: ModelProto,
    side: usize,
    outputs: &[String],
) -> Result<Plan, InferError> {
    if let Some(graph) = proto.graph.as_mut() {
        crate::onnx::dequant::fold_constant_dequantize(graph)?;
    }
    let parsed = tract_onnx::onnx()
        .parse(&proto, None)
        .map_err(tract("tract cannot read the ONNX model"))?;
    drop(proto);
    let mut model = parsed.model;
    if !outputs.is_empty() {
        let outlets = outputs
            .iter()
            .map(|name| {
                (parsed.outlets_by_name.get(name).copied())
                    .ok_or_else(|| InferError::NoTensor { name: name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        model
            .select_output_outlets(&outlets)
            .map_err(tract("selecting the outputs"))?;
    }
    model
        .with_input_fact(0, f32::fact([1, 3, side, side]).into())
        .map_err(tract(
            "tract cannot fix the model input to [1, 3, side, side]",
        ))?
        .into_optimized()
        .map_err(tract("tract cannot optimize the model"))?
        .into_runnable()
        .map_err(tract("tract cannot plan the model"))
}

/// Wraps a tract error with what was being done.
fn tract(step: impl Into<String>) -> impl FnOnce(TractError) -> InferError {
    let step = step.into();
    move |source| InferError::Tract { step, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{GraphProto, NodeProto, TypeProto, ValueInfoProto, type_proto};

    /// `x` (f32, its shape left to the loader) → Relu → `r` → Neg → `y`, the graph's output.
    fn relu_neg() -> ModelProto {
        let node = |op: &str, input: &str, output: &str| NodeProto {
            op_type: op.to_owned(),
            input: vec![input.to_owned()],
            output: vec![output.to_owned()],
            ..Default::default()
        };
        let value = |name: &str| ValueInfoProto {
            name: name.to_owned(),
            ..Default::default()
        };
        ModelProto {
            graph: Some(GraphProto {
                node: vec![node("Relu", "x", "r"), node("Neg", "r", "y")],
                input: vec![ValueInfoProto {
                    r#type: Some(TypeProto {
                        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                            elem_type: 1, // FLOAT
                            shape: None,
                        })),
                        ..Default::default()
                    }),
                    ..value("x")
                }],
                output: vec![value("y")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(plan: &Plan, x: &[f32]) -> Vec<Vec<f32>> {
        let x = Tensor::from_shape(&[1, 3, 1, 1], x).unwrap();
        let outs = plan.run(tvec!(x.into())).unwrap();
        outs.iter()
            .map(|t| {
                t.try_as_plain_ram()
                    .unwrap()
                    .as_slice::<f32>()
                    .unwrap()
                    .to_vec()
            })
            .collect()
    }

    /// By hand: relu(−2, 0.5, 3) = (0, 0.5, 3), negated (−0, −0.5, −3); the model's own output
    /// without names, the named tensors in the order asked, and an unknown name refused by name.
    #[test]
    fn load_spec_outputs_the_named_tensors() {
        let x = [-2.0, 0.5, 3.0];
        let own = load_spec(relu_neg(), 1, &[]).unwrap();
        assert_eq!(run(&own, &x), [vec![-0.0, -0.5, -3.0]]);
        let names = ["y".to_owned(), "r".to_owned()];
        let tapped = load_spec(relu_neg(), 1, &names).unwrap();
        assert_eq!(
            run(&tapped, &x),
            [vec![-0.0, -0.5, -3.0], vec![0.0, 0.5, 3.0]]
        );
        let err = load_spec(relu_neg(), 1, &["nope".to_owned()]).unwrap_err();
        assert_eq!(err.to_string(), "the model has no tensor named nope");
    }
}
