//! Weights by structure: the conv and dense layers of an EfficientNet ONNX file from another
//! tool (timm through `torch.onnx.export`, Keras through tf2onnx), matched in execution order
//! to the network's layers, shape by shape, and handed to [`import_fovea_onnx`] under the
//! names a fovea export would give them.
//!
//! Each file conv becomes `scale ⊙ conv(x, W) + shift` ([`ConvLayer::scale_shift`]: its bias
//! and any BatchNorm / `Mul` / `Add` after it), stored as the fovea export stores a conv with
//! its BatchNorm folded: weight `scale ⊙ W`, bias `shift`. A squeeze-excite conv takes the same
//! pair as its weight and bias. Dense layers are matched from the last (the classifier) back.
//!
//! The file must also pad as the network does, or the import would compute something else
//! without a sign: every conv's padding is checked against the network's (TF "SAME" or
//! symmetric, [`super::super::net::Padding`]) and a disagreement is reported by layer.
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;

use super::onnx_layers::{ConvLayer, ConvPads, OnnxLayers};
use super::{ImportReport, import_fovea_onnx};
use crate::model::net::EfficientNet;
use crate::model::net::conv_bn::ConvBn;
use crate::weights::{Dtype, Format, StateDict, Tensor};

/// A conv of the network: its export name and what the file's conv must match.
struct ConvSlot<'a> {
    /// `stem`, `blocks.3.depthwise`, `blocks.3.se.reduce`, …
    name: String,
    /// Followed by BatchNorm (a `ConvBn`): stored as `{name}.conv.*`, else `{name}.*`.
    with_bn: bool,
    conv: &'a Conv2d,
}

fn bn<'a>(name: String, c: &'a ConvBn) -> ConvSlot<'a> {
    ConvSlot {
        name,
        with_bn: true,
        conv: &c.conv,
    }
}

fn conv_slots(model: &EfficientNet) -> Vec<ConvSlot<'_>> {
    let mut slots = vec![bn("stem".into(), &model.stem)];
    for (i, b) in model.blocks.iter().enumerate() {
        if let Some(e) = &b.expand {
            slots.push(bn(format!("blocks.{i}.expand"), e));
        }
        slots.push(bn(format!("blocks.{i}.depthwise"), &b.depthwise));
        if let Some(se) = &b.se {
            for (part, conv) in [("reduce", &se.reduce), ("expand", &se.expand)] {
                slots.push(ConvSlot {
                    name: format!("blocks.{i}.se.{part}"),
                    with_bn: false,
                    conv,
                });
            }
        }
        slots.push(bn(format!("blocks.{i}.project"), &b.project));
    }
    slots.push(bn("head_conv".into(), &model.head_conv));
    slots
}

/// Why the file's padding of `layer` differs from `slot`'s, if it does; `size` is the layer's
/// input height and width when the file fixes its input size (else taken as even, as every
/// stride-2 layer of EfficientNet sees at 224 px).
fn padding_mismatch(
    slot: &ConvSlot,
    layer: &ConvLayer,
    size: Option<[usize; 2]>,
) -> Option<String> {
    let k = slot.conv.kernel_size;
    let stride = slot.conv.stride;
    // (before, after) per axis that the file applies on an even input, `None` for "SAME".
    let file = match layer.pads {
        ConvPads::SameUpper => None,
        ConvPads::SameLower if stride == [1, 1] => None,
        ConvPads::SameLower => return Some(format!("{}: the file pads SAME_LOWER", slot.name)),
        ConvPads::Explicit { begin, end } => Some([(begin[0], end[0]), (begin[1], end[1])]),
    };
    let symmetric = [(k[0] / 2, k[0] / 2), (k[1] / 2, k[1] / 2)];
    let tf_same = [0, 1].map(|a| {
        let total = match size {
            Some(n) => {
                let out = n[a].div_ceil(stride[a]);
                (out.saturating_sub(1) * stride[a] + k[a]).saturating_sub(n[a])
            }
            None => k[a].saturating_sub(stride[a]),
        };
        (total / 2, total - total / 2)
    });
    let fits_tf = file.is_none_or(|f| f == tf_same);
    let fits_symmetric = file == Some(symmetric);
    let describe = |f: Option<[(usize, usize); 2]>| match f {
        None => "SAME_UPPER".to_owned(),
        Some(p) if p == symmetric => format!("{p:?} (symmetric, as PyTorch / timm efficientnet_*)"),
        Some(p) if p == tf_same => format!("{p:?} (TF \"SAME\")"),
        Some(p) => format!("{p:?}"),
    };
    match &slot.conv.padding {
        PaddingConfig2d::Same if !fits_tf => Some(format!(
            "{}: the file's Conv '{}' pads (before, after) {} where the network pads TF \"SAME\" \
             {tf_same:?}; build the network with symmetric padding (--symmetric-padding)",
            slot.name,
            layer.node,
            describe(file)
        )),
        PaddingConfig2d::Explicit(..) if !fits_symmetric => Some(format!(
            "{}: the file's Conv '{}' pads (before, after) {} where the network pads \
             symmetrically {symmetric:?}; build the network with TF \"SAME\" padding (drop \
             --symmetric-padding)",
            slot.name,
            layer.node,
            describe(file)
        )),
        _ => None,
    }
}

fn f32_tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        shape,
        dtype: Dtype::F32,
        data,
    }
}

/// Copies the layers of a foreign EfficientNet ONNX file into `model` by structure; see the
/// module comment. Nothing is copied when the conv layers do not line up one to one.
pub fn import_onnx_by_structure(
    model: EfficientNet,
    layers: &OnnxLayers,
) -> (EfficientNet, ImportReport) {
    let slots = conv_slots(&model);
    let mut report = ImportReport::default();
    let mut tensors = Vec::new();
    if slots.len() != layers.convs.len() {
        report.mis_shaped.push(format!(
            "the file has {} conv layers where the network has {}: not the same architecture",
            layers.convs.len(),
            slots.len()
        ));
    }
    // Input size of the next conv (squeeze-excite convs see 1×1 and change nothing).
    let mut size = layers.input_size;
    for (slot, layer) in slots.iter().zip(&layers.convs) {
        let shape = slot.conv.weight.val().dims();
        if layer.shape != shape || layer.group != slot.conv.groups {
            report.mis_shaped.push(format!(
                "{}: the file's Conv '{}' has weight {:?} in {} group(s), the network {shape:?} \
                 in {}",
                slot.name, layer.node, layer.shape, layer.group, slot.conv.groups
            ));
            continue;
        }
        if slot.with_bn {
            report.padding.extend(padding_mismatch(slot, layer, size));
            size = size.map(|s| [0, 1].map(|a| s[a].div_ceil(slot.conv.stride[a])));
        }
        let (scale, shift) = layer.scale_shift();
        let per_out = layer.weight.len() / shape[0];
        let weight = layer
            .weight
            .iter()
            .enumerate()
            .map(|(i, w)| w * scale[i / per_out])
            .collect();
        let prefix = if slot.with_bn {
            format!("{}.conv", slot.name)
        } else {
            slot.name.clone()
        };
        tensors.push((
            format!("{prefix}.weight"),
            f32_tensor(shape.to_vec(), weight),
        ));
        tensors.push((format!("{prefix}.bias"), f32_tensor(vec![shape[0]], shift)));
    }
    if !report.mis_shaped.is_empty() {
        // Past the first disagreement the pairs are out of step: name the first few only.
        const SHOWN: usize = 3;
        let more = report.mis_shaped.len().saturating_sub(SHOWN);
        report.mis_shaped.truncate(SHOWN);
        if more > 0 {
            report.mis_shaped.push(format!("… and {more} more"));
        }
        return (model, report);
    }
    let dense_slots: Vec<&str> = match model.classifier.hidden {
        Some(_) => vec!["classifier.hidden", "classifier.output"],
        None => vec!["classifier.output"],
    };
    for (slot, layer) in dense_slots.iter().rev().zip(layers.dense.iter().rev()) {
        let shape = vec![layer.inputs, layer.outputs];
        tensors.push((
            format!("{slot}.weight"),
            f32_tensor(shape, layer.weight.clone()),
        ));
        tensors.push((
            format!("{slot}.bias"),
            f32_tensor(vec![layer.outputs], layer.bias.clone()),
        ));
    }
    let dict = StateDict::new(Format::Onnx, tensors);
    let (model, imported) = import_fovea_onnx(model, &dict);
    report.loaded = imported.loaded;
    report.mis_shaped = imported.mis_shaped;
    report.unexpected = imported.unexpected;
    report.head_skipped = imported.head_skipped;
    // A file without a classifier (Keras include_top=False) leaves the head fresh.
    for name in imported.missing {
        if name.starts_with("classifier.") {
            report
                .head_skipped
                .push(format!("{name}: the file has no such dense layer"));
        } else {
            report.missing.push(name);
        }
    }
    let preamble: Vec<&String> = layers
        .preamble
        .iter()
        .filter(|op| *op != "Transpose" && *op != "Identity")
        .collect();
    if !preamble.is_empty() {
        report.notes.push(format!(
            "the file preprocesses its input itself before the stem ({}), which is not imported: \
             fovea feeds the stem what the run's PreprocessConfig makes (ImageNet mean/std \
             unless set otherwise)",
            preamble
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    (model, report)
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor as BurnTensor, TensorData};
    use shared::preprocess::PreprocessConfig;
    use shared::task::Task;
    use tract_onnx::pb::ModelProto;

    use super::*;
    use crate::export::Metadata;
    use crate::model::arch::Architecture;
    use crate::model::import::onnx_layers;
    use crate::model::net::{EfficientNetConfig, Head};
    use crate::model::scaling::Variant;
    use crate::test_support as support;
    use crate::train::config::HeadKind;

    const SIZE: usize = 48;

    /// A fovea export of `variant` (random BatchNorm, so the folding counts) with every
    /// initializer renamed `onnx::W_<i>`, as timm's `torch.onnx.export` names folded weights:
    /// only the structure is left to import by.
    fn anonymous_export(
        variant: Variant,
        head: Head,
        same_padding: bool,
        device: &Device,
    ) -> (EfficientNet, ModelProto) {
        let arch = Architecture::new(variant, 3);
        let net = EfficientNetConfig::new(&arch, head)
            .with_same_padding(same_padding)
            .init(device);
        let net = crate::cmd::export::randomize_batchnorm(net, device);
        let meta = Metadata {
            variant,
            head: match head {
                Head::Linear => HeadKind::Linear,
                Head::Mlp => HeadKind::Mlp,
            },
            task: Task::Classes,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            preprocess: PreprocessConfig {
                size: SIZE as u32,
                ..Default::default()
            },
        };
        let mut proto = crate::export::to_onnx(&net, SIZE, &meta).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        let renames: std::collections::HashMap<String, String> = graph
            .initializer
            .iter_mut()
            .enumerate()
            .map(|(i, t)| {
                let new = format!("onnx::W_{i}");
                (std::mem::replace(&mut t.name, new.clone()), new)
            })
            .collect();
        for n in &mut graph.node {
            for i in &mut n.input {
                if let Some(new) = renames.get(i) {
                    *i = new.clone();
                }
            }
        }
        (net, proto)
    }

    fn max_abs_diff(a: BurnTensor<2>, b: BurnTensor<2>) -> (f32, f32) {
        let scale: f32 = a.clone().abs().max().into_scalar();
        (scale, (a - b).abs().max().into_scalar())
    }

    /// Anonymous B0 export (MLP head: two dense layers) → structure → a differently seeded
    /// network: the logits are the exported network's.
    #[test]
    fn an_anonymous_export_imports_by_structure() {
        let device = Device::flex();
        device.seed(31);
        let (net, proto) = anonymous_export(Variant::B0, Head::Mlp, true, &device);
        let layers = onnx_layers::layers(proto.graph.as_ref().unwrap()).unwrap();
        assert!(layers.preamble.is_empty(), "{:?}", layers.preamble);
        device.seed(32);
        let fresh =
            EfficientNetConfig::new(&Architecture::new(Variant::B0, 3), Head::Mlp).init(&device);
        let (imported, report) = import_onnx_by_structure(fresh, &layers);
        assert!(report.backbone_complete(), "{report:?}");
        assert!(report.head_skipped.is_empty() && report.unexpected.is_empty());
        // B0: 81 convs (weight + bias each), 2 dense layers (weight + bias each).
        assert_eq!(report.loaded, 81 * 2 + 2 * 2);
        let x = BurnTensor::<4>::random([2, 3, SIZE, SIZE], Distribution::Default, &device);
        let (scale, diff) = max_abs_diff(net.forward(x.clone()), imported.forward(x));
        assert!(
            scale > 0.01 && diff < 1e-5,
            "max |Δ| = {diff} (logits up to {scale})"
        );
    }

    /// A file of another architecture, or padded the other way, is refused with the reason.
    #[test]
    fn another_architecture_or_padding_is_reported() {
        let device = Device::flex();
        device.seed(33);
        let b0 = || {
            EfficientNetConfig::new(&Architecture::new(Variant::B0, 3), Head::Linear).init(&device)
        };
        let (_, lite0) = anonymous_export(Variant::Lite0, Head::Linear, true, &device);
        let layers = onnx_layers::layers(lite0.graph.as_ref().unwrap()).unwrap();
        let (_, report) = import_onnx_by_structure(b0(), &layers);
        assert!(!report.backbone_complete());
        // Lite0 has no squeeze-excite: 49 convs against B0's 81.
        assert!(
            report.mis_shaped[0].contains("the file has 49 conv layers where the network has 81"),
            "{:?}",
            report.mis_shaped
        );

        let (_, symmetric) = anonymous_export(Variant::B0, Head::Linear, false, &device);
        let layers = onnx_layers::layers(symmetric.graph.as_ref().unwrap()).unwrap();
        let (_, report) = import_onnx_by_structure(b0(), &layers);
        assert!(report.mis_shaped.is_empty() && report.missing.is_empty());
        // The stem and three of B0's four stride-2 depthwise convs: at 48 px the fourth sees
        // 3×3, where TF "SAME" pads a 5×5 kernel symmetrically too.
        assert_eq!(report.padding.len(), 4, "{:?}", report.padding);
        assert!(
            report.padding[0].starts_with("stem:")
                && report.padding[0].contains("symmetric")
                && report.padding[0].contains("--symmetric-padding"),
            "{}",
            report.padding[0]
        );
        let symmetric_b0 =
            EfficientNetConfig::new(&Architecture::new(Variant::B0, 3), Head::Linear)
                .with_same_padding(false)
                .init(&device);
        let (_, report) = import_onnx_by_structure(symmetric_b0, &layers);
        assert!(report.backbone_complete(), "{report:?}");
    }

    /// A peer export's case: the ONNX file, the input its graph's stem sees (NCHW) and
    /// onnxruntime's logits on the file, all made by `scripts/make-peer-onnx.sh`.
    struct PeerCase {
        onnx: std::path::PathBuf,
        input: BurnTensor<4>,
        logits: BurnTensor<2>,
    }

    fn peer_case(
        stem: &str,
        find: fn(&str) -> Option<std::path::PathBuf>,
        device: &Device,
    ) -> Option<PeerCase> {
        let onnx = find(&format!("{stem}.onnx"))?;
        let input = find(&format!("{stem}.input.f32"))?;
        let reference = find(&format!("{stem}.json"))?;
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
        let shape: [usize; 4] = serde_json::from_value(reference["input_shape"].clone()).unwrap();
        let logits: Vec<Vec<f32>> = serde_json::from_value(reference["logits"].clone()).unwrap();
        let x: Vec<f32> = std::fs::read(input)
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(PeerCase {
            onnx,
            input: BurnTensor::<4>::from_data(TensorData::new(x, shape), device),
            logits: BurnTensor::<2>::from_data(
                TensorData::new(logits.concat(), [logits.len(), logits[0].len()]),
                device,
            ),
        })
    }

    /// `case` imported through `--pretrained`'s path into a fresh 5-class B0 with the given
    /// padding gives onnxruntime's logits to 1e-4 of their largest.
    fn assert_imports_to_onnxruntime(case: PeerCase, same_padding: bool, device: &Device) {
        let net = EfficientNetConfig::new(&Architecture::new(Variant::B0, 5), Head::Linear)
            .with_same_padding(same_padding)
            .init(device);
        let net = crate::train::import_pretrained(net, &case.onnx, Variant::B0)
            .unwrap()
            .valid();
        let (scale, diff) = max_abs_diff(case.logits, net.forward(case.input));
        assert!(
            scale > 0.1 && diff <= 1e-4 * scale,
            "{}: max |Δ| = {diff} (onnxruntime logits up to {scale})",
            case.onnx.display()
        );
    }

    /// Keras `EfficientNetB0` (random BatchNorm statistics and biases) exported by tf2onnx:
    /// BatchNorm folded into the regular convs, left as `Mul` + `Add` after the depthwise
    /// ones, `Pad` nodes for TF "SAME", the classifier a `MatMul` + `Add`. Imported through
    /// `--pretrained`'s path into fovea's B0, it gives onnxruntime's logits on the same input.
    /// Reference: `scripts/make-peer-onnx.sh` (tensorflow-cpu 2.21.0, tf2onnx 1.17.0,
    /// onnxruntime 1.32.0; logits up to 1.71, Keras vs onnxruntime 1.1e-6, fovea vs
    /// onnxruntime 8.3e-7 when it was written).
    #[test]
    fn keras_b0_through_tf2onnx_gives_onnxruntime_logits() {
        let device = Device::flex();
        let Some(case) = peer_case("keras-b0", support::peer_onnx, &device) else {
            return;
        };
        let layers = onnx_layers::read(&case.onnx).unwrap();
        assert_eq!((layers.convs.len(), layers.dense.len()), (81, 1));
        assert_eq!(layers.preamble, ["Mul", "Add", "Mul", "Transpose"]);
        assert_eq!(layers.input_size, Some([224, 224]));
        let net =
            EfficientNetConfig::new(&Architecture::new(Variant::B0, 5), Head::Linear).init(&device);
        let (_, report) = import_onnx_by_structure(net, &layers);
        assert!(
            report.backbone_complete() && report.head_skipped.is_empty(),
            "{report:?}"
        );
        assert!(
            report.notes[0].contains("(Mul, Add, Mul)"),
            "{:?}",
            report.notes
        );
        assert_imports_to_onnxruntime(case, true, &device);
    }

    /// timm `efficientnet_b0` (symmetric padding; BatchNorm folded by torch.onnx.export, tied
    /// biases behind `Identity` nodes, a `Gemm` classifier with transB) into a symmetric B0,
    /// and `tf_efficientnet_b0` (TF "SAME" padding as `Pad` nodes, folded to constants by
    /// onnxruntime) into a TF B0: onnxruntime's logits. Made only with
    /// `FOVEA_PEER_TIMM=1 scripts/make-peer-onnx.sh` (torch 2.15.0, timm 1.0.31; logits up to
    /// 2.44 and 0.943, timm vs onnxruntime 1.3e-6 and 1.7e-6 when it was written).
    #[test]
    fn timm_b0_exports_give_onnxruntime_logits() {
        let device = Device::flex();
        for (stem, same_padding) in [("timm-b0", false), ("timm-tf-b0", true)] {
            let Some(case) = peer_case(stem, support::peer_onnx_timm, &device) else {
                continue;
            };
            let layers = onnx_layers::read(&case.onnx).unwrap();
            assert_eq!((layers.convs.len(), layers.dense.len()), (81, 1), "{stem}");
            // The other padding is refused, by layer.
            let other = EfficientNetConfig::new(&Architecture::new(Variant::B0, 5), Head::Linear)
                .with_same_padding(!same_padding)
                .init(&device);
            let (_, report) = import_onnx_by_structure(other, &layers);
            assert_eq!(report.padding.len(), 5, "{stem}: {:?}", report.padding);
            assert_imports_to_onnxruntime(case, same_padding, &device);
        }
    }
}
