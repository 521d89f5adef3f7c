//! `Manifest`: everything the device needs besides the weights, postcard-encoded in the bundle.
//!
//! The preprocessing and quality configs travel as canonical JSON strings inside the postcard
//! record, not as nested postcard structs: postcard is not self-describing, so it cannot decode
//! serde's internally tagged enums (`Crop` and `Normalize` are `#[serde(tag = "kind")]`; see
//! the test `postcard_cannot_decode_tagged_configs`), and JSON is also what the run directory
//! already stores, so the host embeds exactly the text it saved. The task is stored by name,
//! not by enum index, so reordering `Task` can never silently change a bundle's meaning.
use serde::{Deserialize, Serialize};

use super::error::BundleError;
use super::format::FORMAT_VERSION;
use crate::preprocess::PreprocessConfig;
use crate::quality::QualityConfig;
use crate::task::Task;

/// Most classes a manifest may list.
const MAX_CLASSES: usize = 1000;

/// The bundle's description of its model: how to feed it and how to read its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Bundle format version this manifest was written for (equals the header's).
    pub format_version: u16,
    /// Model variant name, e.g. `efficientnet_b0` (informational: nothing is derived from it).
    pub variant: String,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// What the model predicts.
    pub task: Task,
    /// Preprocessing exactly as in training.
    pub preprocess: PreprocessConfig,
    /// Quality-gate thresholds.
    pub quality: QualityConfig,
    /// Named decision thresholds on the model's output (at least one for screening).
    pub operating_thresholds: Vec<OperatingThreshold>,
    /// Summary of the training run (config, data, metrics) as JSON, written by the host.
    pub train_summary_json: String,
    /// Encoding of the model bytes, e.g. `onnx` or `nnef.tar`, so the runtime knows its loader.
    pub model_format: String,
    /// SHA-256 of the model bytes.
    pub model_sha256: [u8; 32],
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created_unix: u64,
    /// The tool that wrote the bundle, e.g. `fovea-host 0.1.0`.
    pub tool_version: String,
}

/// One named operating point: positive when the summed probability of `positive_classes`
/// reaches `threshold`.
///
/// Binary referable model: `positive_classes = [1]`. Five-grade model, referable DR:
/// `[2, 3, 4]` (moderate NPDR or worse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingThreshold {
    /// Name shown in reports, e.g. `referable` or `high_sensitivity`.
    pub name: String,
    /// Indices into [`Manifest::classes`] whose probabilities are summed into the score.
    pub positive_classes: Vec<u32>,
    /// Decision threshold on the score, in `[0, 1]`.
    pub threshold: f32,
    /// The sensitivity this threshold was chosen for on validation data, if any.
    pub target_sensitivity: Option<f32>,
}

impl OperatingThreshold {
    /// The score for one softmax output row (classes missing from `probs` count as 0).
    pub fn score(&self, probs: &[f32]) -> f32 {
        self.positive_classes
            .iter()
            .filter_map(|&c| probs.get(c as usize))
            .sum()
    }

    /// Whether the row is positive at this operating point.
    pub fn is_positive(&self, probs: &[f32]) -> bool {
        self.score(probs) >= self.threshold
    }
}

/// The manifest as encoded: configs as JSON text, task by name (see the module doc).
#[derive(Serialize, Deserialize)]
struct Wire {
    format_version: u16,
    variant: String,
    classes: Vec<String>,
    task: String,
    preprocess_json: String,
    quality_json: String,
    operating_thresholds: Vec<OperatingThreshold>,
    train_summary_json: String,
    model_format: String,
    model_sha256: [u8; 32],
    created_unix: u64,
    tool_version: String,
}

impl Manifest {
    /// The postcard bytes stored in the bundle; checks [`Manifest::validate`] first, and that
    /// the configs survive JSON (a NaN would not).
    pub fn encode(&self) -> Result<Vec<u8>, BundleError> {
        self.validate().map_err(BundleError::InvalidManifest)?;
        let json = |what: &str, r: serde_json::Result<String>| {
            r.map_err(|e| BundleError::InvalidManifest(format!("{what} config: {e}")))
        };
        let wire = Wire {
            format_version: self.format_version,
            variant: self.variant.clone(),
            classes: self.classes.clone(),
            task: self.task.name().to_owned(),
            preprocess_json: json("preprocess", serde_json::to_string(&self.preprocess))?,
            quality_json: json("quality", serde_json::to_string(&self.quality))?,
            operating_thresholds: self.operating_thresholds.clone(),
            train_summary_json: self.train_summary_json.clone(),
            model_format: self.model_format.clone(),
            model_sha256: self.model_sha256,
            created_unix: self.created_unix,
            tool_version: self.tool_version.clone(),
        };
        let bytes = postcard::to_stdvec(&wire)
            .map_err(|e| BundleError::InvalidManifest(format!("postcard: {e}")))?;
        match Manifest::decode(&bytes) {
            Ok(back) if back == *self => Ok(bytes),
            _ => Err(BundleError::InvalidManifest(
                "the manifest does not survive encoding (a NaN or infinite value?)".into(),
            )),
        }
    }

    /// Decodes and validates postcard manifest bytes. Never panics; every byte must be used.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let (wire, rest): (Wire, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if !rest.is_empty() {
            return Err(BundleError::Manifest(format!(
                "{} unexpected bytes after the manifest",
                rest.len()
            )));
        }
        let task = wire.task.parse().map_err(BundleError::Manifest)?;
        let preprocess = serde_json::from_str(&wire.preprocess_json)
            .map_err(|e| BundleError::Manifest(format!("preprocess config: {e}")))?;
        let quality = serde_json::from_str(&wire.quality_json)
            .map_err(|e| BundleError::Manifest(format!("quality config: {e}")))?;
        let manifest = Manifest {
            format_version: wire.format_version,
            variant: wire.variant,
            classes: wire.classes,
            task,
            preprocess,
            quality,
            operating_thresholds: wire.operating_thresholds,
            train_summary_json: wire.train_summary_json,
            model_format: wire.model_format,
            model_sha256: wire.model_sha256,
            created_unix: wire.created_unix,
            tool_version: wire.tool_version,
        };
        manifest.validate().map_err(BundleError::InvalidManifest)?;
        Ok(manifest)
    }

    /// Checks what a device relies on: version, classes matching the task, configs in range,
    /// thresholds pointing at real classes, the summary being JSON.
    pub fn validate(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "manifest format version {} is not {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if self.variant.is_empty() {
            return Err("the variant is empty".into());
        }
        let n = self.classes.len();
        if n == 0 || n > MAX_CLASSES {
            return Err(format!("{n} classes (1..={MAX_CLASSES} allowed)"));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.is_empty() || self.classes[..i].contains(c) {
                return Err(format!("class name {c:?} is empty or repeated"));
            }
        }
        let expected = match self.task {
            Task::Grade => Some(5),
            Task::Referable => Some(2),
            _ => None,
        };
        if let Some(k) = expected
            && k != n
        {
            return Err(format!(
                "task {} needs {k} classes, found {n}",
                self.task.name()
            ));
        }
        self.preprocess
            .validate()
            .map_err(|e| format!("preprocess: {e}"))?;
        validate_quality(&self.quality)?;
        for (i, t) in self.operating_thresholds.iter().enumerate() {
            let name = &t.name;
            if name.is_empty()
                || self.operating_thresholds[..i]
                    .iter()
                    .any(|o| o.name == *name)
            {
                return Err(format!(
                    "operating threshold name {name:?} is empty or repeated"
                ));
            }
            if t.positive_classes.is_empty() {
                return Err(format!("operating threshold {name}: no positive classes"));
            }
            for (j, &c) in t.positive_classes.iter().enumerate() {
                if c as usize >= n || t.positive_classes[..j].contains(&c) {
                    return Err(format!(
                        "operating threshold {name}: class {c} is out of range (0..{n}) or repeated"
                    ));
                }
            }
            if !(0.0..=1.0).contains(&t.threshold) {
                return Err(format!(
                    "operating threshold {name}: {} is outside [0, 1]",
                    t.threshold
                ));
            }
            if let Some(s) = t.target_sensitivity
                && !(s > 0.0 && s <= 1.0)
            {
                return Err(format!(
                    "operating threshold {name}: target sensitivity {s} is outside (0, 1]"
                ));
            }
        }
        serde_json::from_str::<serde_json::Value>(&self.train_summary_json)
            .map_err(|e| format!("train summary is not JSON: {e}"))?;
        Ok(())
    }
}

/// The quality thresholds must be finite and the analysis size usable.
fn validate_quality(q: &QualityConfig) -> Result<(), String> {
    let values = [
        q.min_mean_luma,
        q.max_mean_luma,
        q.max_dark_fraction,
        q.max_bright_fraction,
        q.min_focus,
        q.min_contrast,
    ];
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("quality thresholds must be finite: {q:?}"));
    }
    if !(16..=4096).contains(&q.analysis_size) {
        return Err(format!(
            "quality analysis size {} is outside 16..=4096",
            q.analysis_size
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::preprocess::{Crop, Graham, Normalize};

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            variant: "efficientnet_b0".into(),
            classes: ["0", "1", "2", "3", "4"].map(String::from).to_vec(),
            task: Task::Grade,
            preprocess: PreprocessConfig {
                graham: Some(Graham::default()),
                normalize: Normalize::MeanStd {
                    mean: [0.5, 0.4, 0.3],
                    std: [0.2, 0.25, 0.3],
                },
                ..Default::default()
            },
            quality: QualityConfig::default(),
            operating_thresholds: vec![OperatingThreshold {
                name: "referable".into(),
                positive_classes: vec![2, 3, 4],
                threshold: 0.35,
                target_sensitivity: Some(0.9),
            }],
            train_summary_json: r#"{"epochs":30,"val_qwk":0.87}"#.into(),
            model_format: "onnx".into(),
            model_sha256: [0x11; 32],
            created_unix: 1_760_000_000,
            tool_version: "fovea-host 0.1.0".into(),
        }
    }

    #[test]
    fn round_trips_through_postcard() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Manifest::decode(&longer),
            Err(BundleError::Manifest(_))
        ));
    }

    #[test]
    fn postcard_cannot_decode_tagged_configs() {
        // Why the configs travel as JSON: postcard writes `Crop` but cannot read it back.
        let crop = Crop::FundusCircle { shrink: 0.98 };
        let bytes = postcard::to_stdvec(&crop).unwrap();
        assert!(postcard::from_bytes::<Crop>(&bytes).is_err());
    }

    #[test]
    fn rejects_inconsistent_manifests() {
        let bad = |f: fn(&mut Manifest), needle: &str| {
            let mut m = sample();
            f(&mut m);
            let e = m.encode().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        bad(|m| m.task = Task::Referable, "needs 2 classes");
        bad(|m| m.classes[1] = "0".into(), "repeated");
        bad(
            |m| m.operating_thresholds[0].positive_classes = vec![5],
            "out of range",
        );
        bad(
            |m| m.operating_thresholds[0].threshold = f32::NAN,
            "outside [0, 1]",
        );
        bad(|m| m.quality.min_focus = f32::INFINITY, "finite");
        bad(|m| m.train_summary_json = "{".into(), "not JSON");
        bad(|m| m.format_version = 2, "format version 2");
        bad(
            |m| {
                m.preprocess.normalize = Normalize::MeanStd {
                    mean: [f32::NAN; 3],
                    std: [1.0; 3],
                }
            },
            "does not survive",
        );
    }

    #[test]
    fn operating_threshold_sums_positive_classes() {
        let t = &sample().operating_thresholds[0];
        let probs = [0.4, 0.25, 0.2, 0.1, 0.05];
        assert!((t.score(&probs) - 0.35).abs() < 1e-6);
        assert!(!t.is_positive(&[0.5, 0.2, 0.1, 0.1, 0.1]));
        assert_eq!(t.score(&[0.5]), 0.0);
    }
}
