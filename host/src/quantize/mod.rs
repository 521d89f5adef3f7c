//! `host quantize`: post-training int8 of a `host export` ONNX file, gated on accuracy.
//!
//! ```text
//! model.onnx (fp32) ─┬─ --mode weights: Conv weights → int8 + DequantizeLinear (weights.rs)
//!                    └─ --mode compute: the same, plus uint8 Q/DQ on every Conv input, ranges
//!                       calibrated on training-split images (calibrate.rs, observer.rs,
//!                       activations.rs)
//!   → fp32 and int8 both run by tract on the validation split (runner.rs)
//!   → gate.rs: headline drop ≤ --max-drop, or refuse and write nothing
//!   → OUT.onnx: same inputs, outputs and metadata, plus `quantization` (JSON: mode, observer,
//!     calibration images, both metric values, the fp32 file's SHA-256)
//! ```
//!
//! `weights` is the edge default: tract folds the dequantization at load, so it runs at fp32
//! speed from a file a quarter the size. The device runs the QDQ (`compute`) form's 1×1 convs
//! in integers (`shared::infer::int8_pointwise`): faster than fp32 on a CPU with AVX-512 VNNI;
//! on ARM boards with NEON kernels (`sdot` on Armv8.2 cores, widening multiplies on Armv8.0
//! ones such as the Cortex-A53) whose speed against fp32 is not yet measured on a board; an
//! order of magnitude slower per conv elsewhere (x86 without VNNI, armv7: a portable loop;
//! docs/PERFORMANCE.md, 2026-12-04); onnxruntime runs it with its integer kernels.
pub mod activations;
pub mod calibrate;
pub mod gate;
pub mod observer;
pub mod runner;
pub mod weights;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use prost::Message;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shared::dataset::Split as SplitIndices;
use tract_onnx::pb::{ModelProto, StringStringEntryProto};

use self::activations::QParams;
use self::gate::Gate;
use self::observer::Observer;
use self::runner::Runner;
use self::weights::WeightsSummary;
use crate::export::metadata::keys;
use crate::train::config::TrainConfig;
use crate::train::data::{self, Split};

/// Metadata key of the quantization record (JSON).
pub const QUANTIZATION_KEY: &str = "quantization";

/// What is quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Conv weights int8 (per output channel), activations f32: 4× smaller, fp32 speed.
    Weights,
    /// Conv weights int8 and Conv inputs uint8 (QDQ), calibrated: integer 1×1 convs on the
    /// device: faster than fp32 with AVX-512 VNNI; on ARM boards NEON integer kernels whose
    /// speed is not yet measured on a board; slow on x86 without VNNI and on armv7.
    Compute,
}

impl Mode {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Weights => "weights",
            Mode::Compute => "compute",
        }
    }
}

/// A validated `host quantize` job.
#[derive(Clone, Debug)]
pub struct QuantizeConfig {
    /// fp32 ONNX file from `host export`.
    pub model: PathBuf,
    /// The `host train` run it was exported from.
    pub run_dir: PathBuf,
    /// Output file.
    pub out: PathBuf,
    /// What is quantized.
    pub mode: Mode,
    /// Activation ranges (compute mode).
    pub observer: Observer,
    /// Training-split images used for calibration (compute mode).
    pub calibration: usize,
    /// Largest headline-metric drop accepted.
    pub max_drop: f64,
    /// Threads decoding images.
    pub threads: usize,
}

/// What a quantization did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// Mode.
    pub mode: Mode,
    /// Observer, as written in the metadata (`minmax`, `percentile:99.99`); compute mode only.
    pub observer: Option<String>,
    /// Calibration images (compute mode).
    pub calibration_images: usize,
    /// Conv weights quantized.
    pub convs: usize,
    /// Activation tensors quantized (compute mode).
    pub activations: usize,
    /// Largest |w − dequantized w|.
    pub max_weight_error: f32,
    /// The accuracy gate.
    pub gate: Gate,
    /// File sizes.
    pub bytes_fp32: usize,
    /// File sizes.
    pub bytes_int8: usize,
    /// SHA-256 of the fp32 file.
    pub source_sha256: String,
}

fn observer_name(o: Observer) -> String {
    match o {
        Observer::MinMax => "minmax".into(),
        Observer::Percentile(p) => format!("percentile:{p}"),
    }
}

/// The int8 form of `proto` (an fp32 `host export`): weights always, activations too in
/// compute mode, calibrated on `calibration` (`[n, 3, side, side]` flattened).
pub fn quantize(
    proto: &ModelProto,
    mode: Mode,
    observer: Observer,
    side: usize,
    calibration: &[f32],
) -> anyhow::Result<(ModelProto, WeightsSummary, usize)> {
    let mut out = proto.clone();
    let graph = out.graph.as_mut().context("the model has no graph")?;
    let mut activations = 0;
    if mode == Mode::Compute {
        let tensors = activations::conv_inputs(graph);
        let ranges = calibrate::ranges(proto, side, &tensors, calibration, observer)?;
        let params: BTreeMap<String, QParams> = ranges
            .into_iter()
            .map(|(name, r)| (name, QParams::from_range(r)))
            .collect();
        activations = params.len();
        activations::insert_qdq(graph, &params)?;
    }
    let summary = weights::quantize_conv_weights(graph)?;
    ensure!(
        summary.convs > 0,
        "the model has no float Conv weights to quantize"
    );
    Ok((out, summary, activations))
}

/// Headline metric of `proto` (tract) on a prepared split.
fn headline(
    proto: &ModelProto,
    cfg: &TrainConfig,
    split: &Split,
    batch: &[f32],
) -> anyhow::Result<(&'static str, f64)> {
    let runner = Runner::new(proto, cfg.preprocess.size as usize)?;
    let probs = runner.probabilities(batch)?;
    let h = cfg
        .task
        .headline(&split.labels(), &probs, cfg.classes.len())
        .context("computing the validation headline metric")?;
    Ok((h.name, h.value))
}

/// Quantizes, gates, and writes `cfg.out` when the gate passes; a refusal is an error that
/// carries both metric values.
pub fn run(cfg: &QuantizeConfig) -> anyhow::Result<Outcome> {
    let bytes =
        std::fs::read(&cfg.model).with_context(|| format!("reading {}", cfg.model.display()))?;
    let proto =
        shared::onnx::model::decode(&bytes).with_context(|| cfg.model.display().to_string())?;
    ensure!(
        !proto
            .metadata_props
            .iter()
            .any(|p| p.key == QUANTIZATION_KEY),
        "{}: already quantized; quantize the fp32 export",
        cfg.model.display()
    );
    let tc = crate::package::manifest::read_config(&cfg.run_dir)?;
    let split: SplitIndices = crate::eval::read_json(&cfg.run_dir.join("split.json"))?;
    crate::package::onnx_check::check_model(&cfg.model, &bytes, &tc.classes, &tc.preprocess)
        .with_context(|| {
            format!(
                "checking {} against run {}",
                cfg.model.display(),
                cfg.run_dir.display()
            )
        })?;
    let data_path = tc
        .data
        .clone()
        .context("the run's config.json names no data set")?;
    let dataset = crate::train::load_dataset(&data_path, tc.task)
        .with_context(|| format!("loading the run's data set {}", data_path.display()))?;
    let side = tc.preprocess.size as usize;

    let val = data::load(
        &dataset,
        &split.val,
        &tc.preprocess,
        &tc.quality,
        cfg.threads,
    )?;
    ensure!(
        !val.items.is_empty(),
        "the run's validation split has no gradable image"
    );
    let (calibration, calibration_images) = if cfg.mode == Mode::Compute {
        let mut pool = split.train.clone();
        pool.shuffle(&mut ChaCha8Rng::seed_from_u64(tc.seed));
        pool.truncate(cfg.calibration);
        let calib = data::load(&dataset, &pool, &tc.preprocess, &tc.quality, cfg.threads)?;
        ensure!(
            !calib.items.is_empty(),
            "no gradable training image to calibrate on"
        );
        (data::batch_all(&calib, &tc.preprocess), calib.items.len())
    } else {
        (Vec::new(), 0)
    };
    let (mut int8, summary, activations) =
        quantize(&proto, cfg.mode, cfg.observer, side, &calibration)?;

    let batch = data::batch_all(&val, &tc.preprocess);
    let (metric, fp32) = headline(&proto, &tc, &val, &batch)?;
    let (_, q) = headline(&int8, &tc, &val, &batch)?;
    let gate = Gate {
        metric,
        fp32,
        int8: q,
        max_drop: cfg.max_drop,
        images: val.items.len(),
    };
    if !gate.passes() {
        bail!(
            "accuracy gate refused the int8 model: {}; {} not written",
            gate.describe(),
            cfg.out.display()
        );
    }
    let observer = (cfg.mode == Mode::Compute).then(|| observer_name(cfg.observer));
    let mut outcome = Outcome {
        mode: cfg.mode,
        observer,
        calibration_images,
        convs: summary.convs,
        activations,
        max_weight_error: summary.max_abs_error,
        gate,
        bytes_fp32: bytes.len(),
        bytes_int8: 0,
        source_sha256: shared::bundle::sha256_hex(&bytes),
    };
    int8.metadata_props.push(StringStringEntryProto {
        key: QUANTIZATION_KEY.to_owned(),
        value: serde_json::json!({
            "mode": outcome.mode,
            "observer": outcome.observer,
            "calibration_images": outcome.calibration_images,
            "convs": outcome.convs,
            "activations": outcome.activations,
            "metric": outcome.gate.metric,
            "fp32": outcome.gate.fp32,
            "int8": outcome.gate.int8,
            "max_drop": outcome.gate.max_drop,
            "validation_images": outcome.gate.images,
            "source_sha256": outcome.source_sha256,
        })
        .to_string(),
    });
    int8.doc_string = format!(
        "{} (int8, {:?} mode, host quantize)",
        proto.doc_string, cfg.mode
    );
    debug_assert!(
        int8.metadata_props
            .iter()
            .any(|p| p.key == keys::PREPROCESS_SHA256)
    );
    let encoded = int8.encode_to_vec();
    outcome.bytes_int8 = encoded.len();
    std::fs::write(&cfg.out, &encoded).with_context(|| format!("writing {}", cfg.out.display()))?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::graph::{Dim, GraphBuilder};

    /// Side of [`tiny`]'s image: 16 pixels, the fewest the device's int8 1×1 op takes.
    const SIDE: usize = 4;
    /// Its pixels.
    const PX: usize = SIDE * SIDE;

    /// A 1×1 convolution 3 → 2 channels on a 4×4 image, with bias.
    fn tiny(weights: &[f32]) -> ModelProto {
        let mut g = GraphBuilder::new();
        let s = || Dim::Fixed(SIDE);
        let x = g.input("input", &[Dim::Fixed(1), Dim::Fixed(3), s(), s()]);
        let w = g.initializer("w", &[2, 3, 1, 1], weights);
        let b = g.initializer("b", &[2], &[0.5, -0.25]);
        let y = g.node("Conv", "y", &[&x, &w, &b], vec![]);
        g.output(&y, &[Dim::Fixed(1), Dim::Fixed(2), s(), s()]);
        ModelProto {
            ir_version: crate::export::IR_VERSION,
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto {
                domain: String::new(),
                version: crate::export::OPSET,
            }],
            graph: Some(g.finish("tiny")),
            ..Default::default()
        }
    }

    /// The runner (the device's loader) on both int8 forms equals the arithmetic written out
    /// by hand: dequantized per-channel weights, and (compute mode) the input rounded to its
    /// uint8 levels; the compute form runs on the device's int8 op (integer sums), the weights
    /// form on its f32 1×1 op.
    #[test]
    fn the_runner_computes_both_forms_as_the_arithmetic_says() {
        let w = [0.9f32, -0.31, 0.05, 0.2, 0.7, -1.3];
        let x: Vec<f32> = (0..3 * PX).map(|i| (i as f32 - 17.3) * 0.11).collect();
        let q = weights::per_channel(&w, 2);
        let wdq: Vec<f32> = (0..6)
            .map(|i| q.levels[i] as f32 * q.scales[i / 3])
            .collect();
        let p = QParams::from_range(observer::Range {
            lo: x.iter().copied().fold(0.0, f32::min),
            hi: x.iter().copied().fold(0.0, f32::max),
        });
        let conv = |w: &[f32], x: &dyn Fn(usize) -> f32| -> Vec<f32> {
            let mut y = vec![0.0f32; 2 * PX];
            for o in 0..2 {
                for px in 0..PX {
                    y[o * PX + px] = [0.5, -0.25][o]
                        + (0..3).map(|c| w[o * 3 + c] * x(c * PX + px)).sum::<f32>();
                }
            }
            y
        };
        let fp32 = tiny(&w);
        for (mode, want, op) in [
            (Mode::Weights, conv(&wdq, &|i| x[i]), "FoveaPointwise"),
            (
                Mode::Compute,
                conv(&wdq, &|i| p.fake_quantize(x[i])),
                "FoveaInt8Pointwise",
            ),
        ] {
            let (int8, summary, acts) = quantize(&fp32, mode, Observer::MinMax, SIDE, &x).unwrap();
            assert_eq!(summary.convs, 1);
            assert_eq!(acts, usize::from(mode == Mode::Compute));
            let runner = Runner::new(&int8, SIDE).unwrap();
            let ops = runner.op_names();
            assert!(ops.iter().any(|n| n == op), "{mode:?}: {ops:?}");
            let got = runner.run(&x).unwrap();
            let diff = got[0]
                .iter()
                .zip(&want)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff < 1e-5, "{mode:?}: tract {:?} vs hand {want:?}", got[0]);
        }
        // And the rounding is visible: the compute form differs from fp32 by more than noise.
        let exact = conv(&w, &|i| x[i]);
        let (int8, _, _) = quantize(&fp32, Mode::Compute, Observer::MinMax, SIDE, &x).unwrap();
        let got = Runner::new(&int8, SIDE).unwrap().run(&x).unwrap();
        let moved = got[0]
            .iter()
            .zip(&exact)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(moved > 1e-4, "{moved}");
    }
}
