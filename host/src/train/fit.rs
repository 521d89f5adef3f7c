//! The training loop: AdamW with linear warm-up then cosine decay (burn's schedulers), label
//! smoothing and class weights (burn's cross-entropy), weight EMA, early stopping on the
//! validation headline metric, a checkpoint every epoch and `--resume`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, ensure};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use shared::task::Headline;

use super::config::TrainConfig;
use super::data::{Split, batch};
use super::ema::Ema;
use super::evaluate::predict;
use super::sampler::{epoch_order, epoch_rng};
use crate::model::net::EfficientNet;

/// One epoch's record, kept in `history.json` and the checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation headline metric (of the EMA weights when EMA is on).
    pub val_metric: f64,
    /// Training throughput.
    pub images_per_second: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
}

/// Loop state saved with every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoopState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps completed.
    pub steps_done: usize,
    /// Best validation metric so far and its epoch.
    pub best: Option<(f64, usize)>,
    /// Epochs since the best one.
    pub stale_epochs: usize,
    /// Every epoch so far.
    pub history: Vec<EpochRecord>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// Files of a run directory.
pub struct RunFiles {
    /// The run directory.
    pub dir: PathBuf,
}

impl RunFiles {
    /// The best weights (EMA when enabled), what export and bundles read.
    pub fn best_model(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }
    fn checkpoint(&self, name: &str) -> PathBuf {
        self.dir.join("checkpoint").join(name)
    }
}

/// Trains `model` on `train`, validating on `val` after each epoch; returns the best model.
pub fn fit(
    cfg: &TrainConfig,
    mut model: EfficientNet,
    train: &Split,
    val: &Split,
    files: &RunFiles,
    resume: bool,
    device: &Device,
) -> anyhow::Result<(EfficientNet, LoopState)> {
    ensure!(
        !train.items.is_empty(),
        "the training split has no gradable image"
    );
    ensure!(
        !val.items.is_empty(),
        "the validation split has no gradable image"
    );
    let classes = cfg.classes.len();
    let steps_per_epoch = train.items.len().div_ceil(cfg.batch_size);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = (cfg.warmup_epochs * steps_per_epoch).min(total_steps.saturating_sub(1));
    let mut scheduler = schedule(cfg.lr, warmup, total_steps)?;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init();
    let train_labels = train.labels();
    let weights = cfg
        .class_weights
        .then(|| inverse_frequency(&train_labels, classes));
    let autodiff = device.clone().autodiff();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing((cfg.label_smoothing > 0.0).then_some(cfg.label_smoothing))
        .with_weights(weights)
        .init(&autodiff);

    let mut state = LoopState::default();
    let mut ema = (cfg.ema_decay > 0.0).then(|| Ema::new(&model, cfg.ema_decay));
    std::fs::create_dir_all(files.dir.join("checkpoint"))?;
    if resume {
        let text = std::fs::read_to_string(files.checkpoint("state.json"))
            .with_context(|| format!("--resume: no checkpoint in {}", files.dir.display()))?;
        state = serde_json::from_str(&text).context("reading checkpoint/state.json")?;
        model = model.load_file(files.checkpoint("model.bpk"));
        optim = optim
            .load(files.checkpoint("optim.bpk"))
            .map_err(|e| anyhow::anyhow!("loading optimizer state: {e:?}"))?;
        if let Some(e) = ema.as_mut() {
            e.model = e.model.clone().load_file(files.checkpoint("ema.bpk"));
        }
        for _ in 0..state.steps_done {
            scheduler.step();
        }
        eprintln!(
            "resuming after epoch {} ({} steps)",
            state.epochs_done, state.steps_done
        );
    }
    let mut model = model.train();
    let s = cfg.preprocess.size as usize;

    for epoch in state.epochs_done..cfg.epochs {
        if state.stopped_early {
            break;
        }
        let order = epoch_order(
            &train_labels,
            cfg.balanced_sampling,
            &mut epoch_rng(cfg.seed, epoch),
        );
        let mut aug_rng = epoch_rng(cfg.seed ^ 0xA06_A06, epoch);
        let bar = progress(steps_per_epoch as u64, epoch, cfg.epochs);
        let (mut loss_sum, mut seen, start) = (0.0f64, 0usize, Instant::now());
        let mut lr = 0.0;
        for idx in order.chunks(cfg.batch_size) {
            let (x, y) = batch(
                train,
                idx,
                &cfg.preprocess,
                Some((&cfg.augment, &mut aug_rng)),
            );
            let x = Tensor::<4>::from_data(TensorData::new(x, [idx.len(), 3, s, s]), &autodiff);
            let y = Tensor::<1, Int>::from_data(
                TensorData::new(y.iter().map(|&l| l as i64).collect(), [idx.len()]),
                &autodiff,
            );
            let loss = loss_fn.forward(model.forward(x), y);
            let loss_value: f32 = loss.clone().into_scalar();
            ensure!(
                loss_value.is_finite(),
                "training diverged at epoch {epoch}: loss is {loss_value}"
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let step_lr = scheduler.step();
            lr = step_lr.base();
            model = optim.step(step_lr, model, grads);
            if let Some(e) = ema.as_mut() {
                e.update(&model);
            }
            state.steps_done += 1;
            loss_sum += loss_value as f64 * idx.len() as f64;
            seen += idx.len();
            let ips = seen as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {:.4}  {ips:.1} img/s",
                loss_sum / seen as f64
            ));
            bar.inc(1);
        }
        let images_per_second = seen as f64 / start.elapsed().as_secs_f64();
        let evaluated = ema
            .as_ref()
            .map_or_else(|| model.valid(), |e| e.model.clone());
        let probs = predict(&evaluated, val, &cfg.preprocess, cfg.batch_size, device);
        let Headline { name, value } = cfg.task.headline(&val.labels(), &probs, classes)?;
        let line = format!(
            "loss {:.4}  val {name} {value:.4}  {images_per_second:.1} img/s",
            loss_sum / seen as f64
        );
        if bar.is_hidden() {
            // No terminal (CI, logs): one plain line per epoch instead of the bar.
            eprintln!("epoch {}/{}: {line}", epoch + 1, cfg.epochs);
        }
        bar.finish_with_message(line);
        state.history.push(EpochRecord {
            epoch,
            train_loss: loss_sum / seen as f64,
            val_metric: value,
            images_per_second,
            lr,
        });
        state.epochs_done = epoch + 1;
        if state.best.is_none_or(|(best, _)| value > best) {
            state.best = Some((value, epoch));
            state.stale_epochs = 0;
            evaluated
                .save_file(files.best_model())
                .map_err(|e| anyhow::anyhow!("saving best model: {e:?}"))?;
        } else {
            state.stale_epochs += 1;
            state.stopped_early = state.stale_epochs >= cfg.patience;
        }
        save_checkpoint(files, &model, ema.as_ref(), &optim, &state)?;
    }
    let best = model.valid().load_file(files.best_model());
    Ok((best, state))
}

fn save_checkpoint(
    files: &RunFiles,
    model: &EfficientNet,
    ema: Option<&Ema>,
    optim: &burn::optim::ModuleOptimizer,
    state: &LoopState,
) -> anyhow::Result<()> {
    let err = |what: &str| format!("writing checkpoint {what} in {}", files.dir.display());
    model
        .clone()
        .save_file(files.checkpoint("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", err("model")))?;
    if let Some(e) = ema {
        e.model
            .clone()
            .save_file(files.checkpoint("ema.bpk"))
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", err("ema")))?;
    }
    optim
        .save(files.checkpoint("optim.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", err("optimizer")))?;
    write_json(&files.checkpoint("state.json"), state)?;
    write_json(&files.dir.join("history.json"), &state.history)
}

/// Writes pretty JSON, naming the file on error.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Linear warm-up from `lr / 100` to `lr` over `warmup` steps, then cosine decay to 0.
fn schedule(
    lr: f64,
    warmup: usize,
    total: usize,
) -> anyhow::Result<burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler> {
    let cosine = LrSchedulerConfig::Cosine(CosineAnnealingLrSchedulerConfig::new(
        lr,
        (total - warmup).max(1),
    ));
    let config = if warmup == 0 {
        SequentialLrSchedulerConfig::new(vec![cosine], vec![])
    } else {
        SequentialLrSchedulerConfig::new(
            vec![
                LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(lr / 100.0, lr, warmup)),
                cosine,
            ],
            vec![warmup],
        )
    };
    config
        .init()
        .map_err(|e| anyhow::anyhow!("learning-rate schedule: {e}"))
}

/// Class weights `n / (classes · count)` (sklearn's "balanced"); absent classes get 0.
pub fn inverse_frequency(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                labels.len() as f32 / (classes * c) as f32
            }
        })
        .collect()
}

fn progress(len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_class_weights_match_scikit_learn() {
        // from sklearn.utils.class_weight import compute_class_weight
        // compute_class_weight('balanced', classes=np.arange(3), y=[0,0,0,0,1,1,2])
        //   -> [0.58333333, 1.16666667, 2.33333333]
        let w = inverse_frequency(&[0, 0, 0, 0, 1, 1, 2], 3);
        for (a, e) in w.iter().zip([0.583_333_3, 1.166_666_7, 2.333_333_3]) {
            assert!((a - e).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn warm_up_then_cosine() {
        // 10 steps, 2 of warm-up from 1e-3 to 0.1, then cosine from 0.1 over 8 steps.
        let mut s = schedule(0.1, 2, 10).unwrap();
        let lrs: Vec<f64> = (0..10).map(|_| s.step().base()).collect();
        assert!((lrs[0] - 0.001).abs() < 1e-9, "{lrs:?}");
        assert!(lrs[2] > lrs[3] && lrs[3] > lrs[9], "{lrs:?}");
        assert!((lrs[2] - 0.1).abs() < 1e-9, "{lrs:?}");
    }
}
