//! `Screener`: a bundle verified and its model optimized once; then one call per image.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use shared::bundle::{Manifest, OperatingThreshold, VerifyingKey, read_bundle_file, sha256};
use shared::decode;
use shared::preprocess;
use shared::quality;
use shared::task::{Task, argmax, softmax};

use image::RgbImage;
use shared::heatmap::{Heatmap, overlay};

use super::cam::{self, LinearHead};
use super::model::{self, Plan};
use super::outcome::{Finding, Outcome};

/// A loaded screening bundle.
pub struct Screener {
    /// The verified manifest.
    pub manifest: Manifest,
    /// The operating point results are decided at.
    pub operating: OperatingThreshold,
    /// SHA-256 of the whole bundle file (names the bundle in audit records).
    pub bundle_sha256: [u8; 32],
    /// The bundle file.
    pub bundle_path: PathBuf,
    plan: Plan,
    head: Option<LinearHead>,
}

/// One screened image, with its class activation overlay when asked for.
pub struct Screened {
    /// The result.
    pub outcome: Outcome,
    /// The prepared image with the positive classes' activation map blended over it.
    pub heatmap: Option<RgbImage>,
}

impl Screener {
    /// Verifies `bundle` against `trusted` keys and prepares its model, under the loading
    /// heap policy ([`super::heap::loading`]).
    pub fn load(bundle: &Path, trusted: &[VerifyingKey]) -> anyhow::Result<Screener> {
        super::heap::loading(|| Self::load_verified(bundle, trusted))
    }

    fn load_verified(bundle: &Path, trusted: &[VerifyingKey]) -> anyhow::Result<Screener> {
        ensure!(
            !trusted.is_empty(),
            "no trusted keys: the device's keys/ folder is empty (flash with --trust) or --keys \
             names none"
        );
        let file_sha = sha256(
            &std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?,
        );
        let b = read_bundle_file(bundle, trusted)?;
        let manifest = b.manifest;
        ensure!(
            manifest.model_format == "onnx",
            "{}: model format {:?} is not supported by this build (onnx only)",
            bundle.display(),
            manifest.model_format
        );
        let Some(operating) = manifest.operating_thresholds.first().cloned() else {
            bail!(
                "{}: the bundle has no operating threshold; edge screens with screening \
                 (referable / grade) bundles only",
                bundle.display()
            );
        };
        let side = manifest.preprocess.size as usize;
        // One decode; the file's bytes are freed before tract copies the weights (peak RSS).
        let proto = shared::onnx::model::decode(&b.model)
            .with_context(|| format!("{}: loading its model", bundle.display()))?;
        drop(b.model);
        let head = cam::read_head(&proto)
            .with_context(|| format!("{}: reading its classifier", bundle.display()))?;
        let plan = model::load_proto(proto, side)
            .with_context(|| format!("{}: loading its model", bundle.display()))?;
        Ok(Screener {
            manifest,
            operating,
            bundle_sha256: file_sha,
            bundle_path: bundle.to_owned(),
            plan,
            head,
        })
    }

    /// Whether the model can draw class activation maps (GAP → linear head with `features`).
    pub fn has_heatmap(&self) -> bool {
        self.head.is_some()
    }

    /// Screens one capture given as its file bytes (`name` for format sniffing and errors);
    /// with `heatmap`, also the class activation overlay of a gradable image.
    pub fn screen_bytes(
        &self,
        bytes: &[u8],
        name: &str,
        heatmap: bool,
    ) -> anyhow::Result<Screened> {
        let decoded = decode::decode_bytes(bytes, name)?; // the error names the file
        let report = quality::assess(&decoded.image, &self.manifest.quality);
        let threshold = self.operating.threshold;
        if !report.verdict.is_gradable() {
            let outcome = Outcome {
                finding: Finding::Ungradable,
                quality: report.verdict,
                probabilities: None,
                grade: None,
                score: None,
                threshold,
            };
            return Ok(Screened {
                outcome,
                heatmap: None,
            });
        }
        let pre = &self.manifest.preprocess;
        let prepared = preprocess::prepare(&decoded.image, pre, report.fov)
            .with_context(|| format!("{name}: preprocessing"))?;
        let chw = preprocess::to_tensor(&prepared.image, prepared.circle.as_ref(), pre);
        let outputs = model::run(&self.plan, chw, pre.size as usize)?;
        let logits = &outputs.first().context("the model has no output")?.values;
        ensure!(
            logits.len() == self.manifest.classes.len(),
            "the model gives {} logits for {} classes",
            logits.len(),
            self.manifest.classes.len()
        );
        let probs = softmax(logits);
        let score = self.operating.score(&probs);
        let outcome = Outcome {
            finding: if score >= threshold {
                Finding::Referable
            } else {
                Finding::NotReferable
            },
            quality: report.verdict,
            grade: (self.manifest.task == Task::Grade).then(|| argmax(&probs)),
            score: Some(score),
            probabilities: Some(probs),
            threshold,
        };
        let heatmap = match (&self.head, heatmap) {
            (Some(head), true) => {
                let features = outputs.get(1).context("the model has no features output")?;
                let [1, c, h, w] = features.shape[..] else {
                    bail!("features output has shape {:?}", features.shape);
                };
                ensure!(
                    c == head.channels,
                    "features have {c} channels, the head {}",
                    head.channels
                );
                let positive: Vec<usize> = self
                    .operating
                    .positive_classes
                    .iter()
                    .map(|&k| k as usize)
                    .collect();
                let map = cam::class_map(&features.values, head, &positive);
                let heat = Heatmap::from_coarse(&map, w as u32, h as u32, pre.size);
                Some(overlay(&prepared.image, &heat))
            }
            _ => None,
        };
        Ok(Screened { outcome, heatmap })
    }
}
