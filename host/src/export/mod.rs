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
//! - [`reference`]: inputs and burn's logits written beside an export, for checkers.
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
/// Feature-map output name (linear head).
pub const FEATURES: &str = "features";
/// The symbolic batch dimension.
pub const BATCH: &str = "N";

/// The model as an ONNX `ModelProto`, for `size`×`size` inputs. `model` must be in
/// evaluation mode (built on a plain device, or [`burn::module::AutodiffModule::valid`]).
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
