//! ONNX export of the burn EfficientNet, written directly as a `tract_onnx::pb::ModelProto`
//! (opset 13) and prost-encoded: one writer for the float model now and the int8 forms later.
//!
//! The graph contract (what `edge` and any ONNX runtime can rely on):
//!
//! ```text
//! input    "input"     f32 [N, 3, S, S]   preprocessed by shared::preprocess (NCHW); N symbolic,
//!                                          S the run's preprocess.size
//! output   "logits"    f32 [N, classes]   before softmax
//! output   "features"  f32 [N, C, h, w]   linear head only: the head conv's activated map
//!                                          before pooling; logits = GAP(features) · W + b with
//!                                          W = initializer "classifier.output.weight" [C, classes]
//!                                          and b = "classifier.output.bias" (for CAMs)
//! metadata variant, head, task, class_names (JSON array), preprocess (canonical JSON),
//!          preprocess_sha256 (hex of that JSON), fovea_version
//! ```
//!
//! - [`fold`]: BatchNorm folded into the conv before it (running statistics, the layer's ε);
//! - [`emit`]: one emitter per layer (conv + folded BN + activation, SE, MBConv, classifier);
//! - [`graph`]: the graph builder (nodes, f32 initializers, inputs / outputs);
//! - [`metadata`]: the `metadata_props`;
//! - [`mod@reference`]: inputs and burn's logits written beside an export, for checkers.
//!
//! Initializer names follow the burn module paths (`stem.conv.weight`, `blocks.3.se.reduce.bias`,
//! `head_conv.conv.weight`, `classifier.output.weight`), so a fovea export can be read back.
pub mod emit;
pub mod fold;
pub mod graph;
pub mod metadata;
pub mod reference;

use std::path::Path;

use anyhow::Context;
use prost::Message;
use tract_onnx::pb::{ModelProto, OperatorSetIdProto};

use self::emit::Value;
use self::graph::{Dim, GraphBuilder};
pub use self::metadata::Metadata;
use crate::model::net::EfficientNet;

/// The ONNX operator set written.
pub const OPSET: i64 = 13;
/// IR version of opset 13 (ONNX 1.8).
pub const IR_VERSION: i64 = 7;
/// Input name.
pub const INPUT: &str = "input";
/// Logits output name.
pub const LOGITS: &str = "logits";
/// Feature-map output name (linear head): the name the device's class activation map reads.
pub const FEATURES: &str = shared::onnx::head::FEATURES;
/// The symbolic batch dimension.
pub const BATCH: &str = "N";

/// The model as an ONNX `ModelProto`, for `size`×`size` inputs. `model` must be in
/// evaluation mode (built on a plain device, or burn's `AutodiffModule::valid`).
pub fn to_onnx(model: &EfficientNet, size: usize, meta: &Metadata) -> anyhow::Result<ModelProto> {
    let mut g = GraphBuilder::new();
    let input = g.input(
        INPUT,
        &[
            Dim::Symbol(BATCH),
            Dim::Fixed(3),
            Dim::Fixed(size),
            Dim::Fixed(size),
        ],
    );
    let input = Value {
        name: input,
        channels: 3,
        h: size,
        w: size,
    };
    let features = emit::backbone(&mut g, &input, model, FEATURES)?;
    let logits = emit::classifier(&mut g, &features, &model.classifier, LOGITS)?;
    let classes = model.classifier.output.weight.dims()[1];
    g.output(&logits, &[Dim::Symbol(BATCH), Dim::Fixed(classes)]);
    if model.classifier.hidden.is_none() {
        g.output(
            &features.name,
            &[
                Dim::Symbol(BATCH),
                Dim::Fixed(features.channels),
                Dim::Fixed(features.h),
                Dim::Fixed(features.w),
            ],
        );
    }
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "fovea".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: format!(
            "EfficientNet-{} exported by fovea host export",
            meta.variant
        ),
        graph: Some(g.finish(&format!("efficientnet_{}", meta.variant))),
        metadata_props: meta.props(),
        ..Default::default()
    })
}

/// Exports `model` to `path`; returns the number of bytes written.
pub fn write(
    model: &EfficientNet,
    size: usize,
    meta: &Metadata,
    path: &Path,
) -> anyhow::Result<usize> {
    let bytes = to_onnx(model, size, meta)?.encode_to_vec();
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::arch::Architecture;
    use crate::model::import::import_fovea_onnx;
    use crate::model::net::{EfficientNetConfig, Head};
    use crate::model::scaling::Variant;
    use crate::train::config::HeadKind;
    use burn::tensor::{Device, Distribution, Tensor};
    use shared::preprocess::PreprocessConfig;
    use shared::task::Task;

    /// export → read the initializers back → import into a differently seeded network: the
    /// logits are those of the exported network (B0 with random BN, so the unfolding counts).
    #[test]
    fn export_then_import_gives_the_same_logits() {
        let device = Device::flex();
        device.seed(21);
        let arch = Architecture::new(Variant::B0, 3);
        let net = EfficientNetConfig::new(&arch, Head::Mlp).init(&device);
        let net = crate::cmd::export::randomize_batchnorm(net, &device);
        let meta = Metadata {
            variant: Variant::B0,
            head: HeadKind::Mlp,
            task: Task::Classes,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            preprocess: PreprocessConfig {
                size: 48,
                ..Default::default()
            },
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b0.onnx");
        write(&net, 48, &meta, &path).unwrap();
        let dict = crate::weights::load(&path).unwrap();
        device.seed(22);
        let fresh = EfficientNetConfig::new(&arch, Head::Mlp).init(&device);
        let (imported, report) = import_fovea_onnx(fresh, &dict);
        assert!(report.missing.is_empty(), "{:?}", report.missing);
        assert!(report.mis_shaped.is_empty() && report.head_skipped.is_empty());
        assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
        let x = Tensor::<4>::random([2, 3, 48, 48], Distribution::Default, &device);
        let a = net.forward(x.clone());
        let b = imported.forward(x);
        let scale: f32 = a.clone().abs().max().into_scalar();
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(
            scale > 0.01 && diff < 1e-5,
            "max |Δ| = {diff} (logits up to {scale})"
        );
    }

    /// A file that is not protobuf is refused with its path.
    #[test]
    fn a_corrupt_onnx_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.onnx");
        std::fs::write(&path, [0xffu8; 7]).unwrap();
        let err = crate::weights::load(&path).unwrap_err().to_string();
        assert!(err.contains("junk.onnx") && err.contains("ONNX"), "{err}");
    }
}
