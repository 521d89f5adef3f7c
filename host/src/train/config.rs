//! `TrainConfig`: every choice of a training run, validated before work starts and written to
//! `RUN_DIR/config.json` first (burn's guide does the same), so a run can be reproduced and the
//! device bundle can embed it.
use std::path::PathBuf;

use anyhow::ensure;
use serde::{Deserialize, Serialize};
use shared::preprocess::{AugmentConfig, PreprocessConfig};
use shared::quality::QualityConfig;

use crate::model::scaling::Variant;
use shared::task::Task;

/// Classifier head on top of the pooled features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// GAP → dropout → Linear(n) (timm, Keras default).
    Linear,
    /// GAP → Dense(1024, ReLU) → Dense(n), the seed notebook's head.
    Mlp,
}

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Network variant.
    pub variant: Variant,
    /// Classifier head.
    pub head: HeadKind,
    /// Task and its headline metric.
    pub task: Task,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// Data set: a CSV manifest or an image folder; `None` = the embedded synthetic default.
    pub data: Option<PathBuf>,
    /// Pretrained weights (`.pth` or `.safetensors`).
    pub pretrained: Option<PathBuf>,
    /// TF "SAME" padding (EfficientNet-Lite / TF weights) instead of timm's symmetric `k / 2`.
    pub tf_padding: bool,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// Drop-connect (stochastic depth) rate of the last block.
    pub drop_connect: f64,
    /// BatchNorm running-statistics momentum (PyTorch convention). The TF reference's 0.01
    /// suits long runs from scratch; after the few hundred steps of a fine-tune it leaves the
    /// evaluation statistics close to ImageNet's, so 0.1 (PyTorch's default) is the default.
    pub bn_momentum: f64,
    /// Train only the head (backbone parameters get no gradient).
    pub freeze_backbone: bool,
    /// Epochs at most.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up, in epochs, before the cosine decay.
    pub warmup_epochs: usize,
    /// Label smoothing of the cross-entropy (0 = none).
    pub label_smoothing: f32,
    /// Class weights of the cross-entropy (inverse frequency when true).
    pub class_weights: bool,
    /// Class-balanced sampling instead of a plain shuffle.
    pub balanced_sampling: bool,
    /// EMA decay of the weights evaluated and saved (0 = off).
    pub ema_decay: f64,
    /// Stop after this many epochs without improvement of the validation headline metric.
    pub patience: usize,
    /// Seed of split, sampling, augmentation, initialisation and dropout.
    pub seed: u64,
    /// Preprocessing (goes into the bundle).
    pub preprocess: PreprocessConfig,
    /// Quality gate (goes into the bundle).
    pub quality: QualityConfig,
    /// Training augmentation.
    pub augment: AugmentConfig,
}

impl TrainConfig {
    /// Checks everything, classes included (they come from the data set).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.validate_options()?;
        ensure!(
            self.classes.len() >= 2,
            "a classifier needs at least two classes (got {:?})",
            self.classes
        );
        if self.task == Task::Referable {
            ensure!(
                self.classes.len() == 2,
                "the referable task has exactly two classes"
            );
        }
        Ok(())
    }

    /// Checks the values a user can get wrong on the command line, before any data is read.
    pub fn validate_options(&self) -> anyhow::Result<()> {
        ensure!(self.epochs >= 1, "--epochs must be at least 1");
        ensure!(
            (0.0..1.0).contains(&self.dropout),
            "--dropout must be in [0, 1) (got {})",
            self.dropout
        );
        ensure!(
            (0.0..1.0).contains(&self.drop_connect),
            "--drop-connect must be in [0, 1) (got {})",
            self.drop_connect
        );
        ensure!(self.batch_size >= 1, "--batch-size must be at least 1");
        ensure!(
            self.bn_momentum > 0.0 && self.bn_momentum <= 1.0,
            "--bn-momentum must be in (0, 1]"
        );
        ensure!(
            self.lr > 0.0 && self.lr.is_finite(),
            "--lr must be positive (got {})",
            self.lr
        );
        ensure!(
            (0.0..1.0).contains(&self.ema_decay),
            "EMA decay must be in [0, 1) (got {})",
            self.ema_decay
        );
        ensure!(
            (0.0..1.0).contains(&self.label_smoothing),
            "--label-smoothing must be in [0, 1)"
        );
        self.preprocess
            .validate()
            .map_err(|e| anyhow::anyhow!("--img-size / preprocessing: {e}"))?;
        Ok(())
    }
}
