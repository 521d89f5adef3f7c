//! `host bench train`: time full training steps (forward, backward, AdamW) of a variant on
//! random data, the number `scripts/bench-train-vs-keras.sh` compares with Keras.
use std::process::ExitCode;
use std::time::Instant;

use anyhow::ensure;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::Serialize;

use crate::model::net::{EfficientNetConfig, Head};
use crate::model::{Architecture, Variant};

/// Arguments of `host bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Training steps per second of one variant.
    Train(TrainArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// EfficientNet variant.
    #[arg(long, value_enum, default_value = "b0")]
    variant: Variant,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    img_size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Classes of the head.
    #[arg(long, default_value_t = 5)]
    classes: u32,
    /// Timed steps (after one untimed warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Train the head only (backbone frozen), as in transfer learning.
    #[arg(long)]
    freeze_backbone: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    variant: String,
    img_size: usize,
    batch_size: usize,
    freeze_backbone: bool,
    steps: usize,
    median_step_s: f64,
    images_per_second: f64,
    peak_rss_mib: Option<f64>,
}

/// Runs `host bench`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Train(a) = args.what;
    ensure!(
        a.steps >= 1 && a.batch_size >= 1 && a.img_size >= 32,
        "--steps, --batch-size ≥ 1 and --img-size ≥ 32"
    );
    let device = Device::flex();
    device.seed(0);
    let arch = Architecture::new(a.variant, a.classes);
    let mut net = EfficientNetConfig::new(&arch, Head::Linear).init(&device);
    if a.freeze_backbone {
        net = net.freeze_backbone();
    }
    let mut net = net.train();
    let train = device.clone().autodiff();
    let (n, s) = (a.batch_size, a.img_size);
    let x = Tensor::<4>::random([n, 3, s, s], Distribution::Normal(0.0, 1.0), &train);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % a.classes as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &train);
    let loss_fn = CrossEntropyLossConfig::new().init(&train);
    let mut optim = AdamWConfig::new().init();
    let mut times = Vec::with_capacity(a.steps);
    for step in 0..=a.steps {
        let start = Instant::now();
        let loss = loss_fn.forward(net.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        // Wait for the lazy work: read one updated weight back.
        let _: f32 = net.classifier.output.weight.val().sum().into_scalar();
        if step > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let report = Report {
        variant: a.variant.to_string(),
        img_size: s,
        batch_size: n,
        freeze_backbone: a.freeze_backbone,
        steps: a.steps,
        median_step_s: median,
        images_per_second: n as f64 / median,
        peak_rss_mib: peak_rss_mib(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} {}px batch {}{}: median step {:.3} s over {} steps = {:.2} images/s; peak RSS {}",
            report.variant,
            s,
            n,
            if a.freeze_backbone {
                " (frozen backbone)"
            } else {
                ""
            },
            median,
            a.steps,
            report.images_per_second,
            report
                .peak_rss_mib
                .map_or("n/a".into(), |m| format!("{m:.0} MiB"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
