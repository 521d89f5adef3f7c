//! Grad-CAM (Selvaraju et al. 2017) with burn's autodiff on the last conv feature map, and
//! montages of heatmaps overlaid on the prepared fundus.
//!
//! The backbone runs in evaluation mode (running BatchNorm statistics) on the plain device;
//! its final feature map `A` (`[C, h, w]`, after the head conv) becomes a leaf on the autodiff
//! device, the classifier runs on it, and the target is the log-odds of the positive classes,
//! `log Σ_pos e^z − log Σ_neg e^z` over the logits `z`. Channel weights are the spatial means of
//! `∂target/∂A`; the map is `ReLU(Σ_c α_c A_c)`, bilinearly upsampled to the input and scaled
//! to `[0, 1]` by its maximum.
use std::path::Path;

use anyhow::Context;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use crate::model::net::EfficientNet;

pub use shared::heatmap::{Heatmap, overlay};

/// Grad-CAM of one input `[1, 3, s, s]` (already normalised as the model expects) for the
/// positive classes `positive`. `model` must be in evaluation mode on `device`.
pub fn grad_cam(
    model: &EfficientNet,
    input: Tensor<4>,
    positive: &[usize],
    device: &Device,
) -> Heatmap {
    let [_, _, side, _] = input.dims();
    let features = model.forward_features(input);
    let [_, c, h, w] = features.dims();
    let ad = device.clone().autodiff();
    let a = Tensor::<4>::from_data(features.into_data(), &ad).require_grad();
    // The classifier in evaluation mode (dropout off) moved onto the autodiff device.
    let head = model.classifier.valid().to_device(&ad);
    let logits = head.forward(a.clone());
    let classes = logits.dims()[1];
    let mask = |positive_side: bool| {
        let m: Vec<f32> = (0..classes)
            .map(|k| f32::from(u8::from(positive.contains(&k) == positive_side)))
            .collect();
        Tensor::<2>::from_data(TensorData::new(m, [1, classes]), &ad)
    };
    // Log-odds of "positive": log Σ_pos e^z − log Σ_neg e^z. Each log-sum-exp is taken over
    // its own classes only (the others pushed to −10⁴ before the exponential) and shifted by
    // its own largest logit, so neither saturates nor overflows: a confident model's
    // log P(positive) has a gradient of exactly 0 in f32, and the naive log-odds log(0).
    let values: Vec<f32> = logits
        .clone()
        .into_data()
        .try_into_vec()
        .expect("f32 logits");
    let lse = |side: bool| {
        let top = (0..classes)
            .filter(|k| positive.contains(k) == side)
            .map(|k| values[k])
            .fold(f32::NEG_INFINITY, f32::max);
        let m = mask(side);
        let z = logits.clone() * m.clone() + (m - 1.0) * 1e4;
        (z - top).exp().sum().log()
    };
    let target = lse(true) - lse(false);
    let grads = target.backward();
    let g = a
        .grad(&grads)
        .expect("the feature map is a leaf that requires grad");
    let alpha = g.mean_dim(3).mean_dim(2); // [1, c, 1, 1]
    let a = a.inner();
    let cam: Vec<f32> = (a * alpha)
        .sum_dim(1)
        .into_data()
        .try_into_vec()
        .expect("f32 map");
    debug_assert_eq!(cam.len(), h * w, "{c} channels");
    Heatmap::from_coarse(&cam, w as u32, h as u32, side as u32)
}

/// Tile side in montages.
pub const TILE: u32 = 192;

/// Writes overlays side by side (scaled to [`TILE`] px) as one PNG.
pub fn write_montage(path: &Path, tiles: &[RgbImage]) -> anyhow::Result<()> {
    anyhow::ensure!(!tiles.is_empty(), "a montage needs at least one image");
    let gap = 4;
    let width = tiles.len() as u32 * (TILE + gap) - gap;
    let mut canvas = RgbImage::from_pixel(width, TILE, Rgb([255, 255, 255]));
    for (i, t) in tiles.iter().enumerate() {
        let scaled = imageops::resize(t, TILE, TILE, FilterType::Triangle);
        imageops::replace(&mut canvas, &scaled, (i as u32 * (TILE + gap)) as i64, 0);
    }
    canvas
        .save(path)
        .with_context(|| format!("writing montage {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::Int;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use shared::preprocess::{Crop, PreprocessConfig, to_tensor};

    use crate::model::arch::Architecture;
    use crate::model::net::{EfficientNetConfig, Head};
    use crate::model::scaling::Variant;
    use crate::synth::{SynthConfig, image_rng, plan, render_eye};

    const SIDE: u32 = 512;
    /// Lite0's last feature map has stride 32: at 512 px (a common input size in DR
    /// screening) it is 16 × 16, and the upsampled map peaks at a cell centre. A lesion centre
    /// is at most 16·√2 ≈ 22.6 px from the nearest cell centre; 80 px (1.8–2.6 optic-disc
    /// radii of the generator's eyes at this size, a large haemorrhage) leaves every centre
    /// a cell whose peak lies inside.
    const LESION_RADIUS: f32 = 80.0;

    /// A grade-0 synthetic eye of the generator, optionally with one large dark-red
    /// haemorrhage of [`LESION_RADIUS`] px painted at `lesion`.
    fn eye(index: usize, lesion: Option<(f32, f32)>) -> RgbImage {
        let mut spec = plan(&SynthConfig::new(index + 1, 11, SIDE).unwrap())[index].clone();
        spec.grade = 0;
        spec.defect = None;
        let mut img = render_eye(&spec, SIDE, &mut image_rng(11, index));
        if let Some((cx, cy)) = lesion {
            for (x, y, p) in img.enumerate_pixels_mut() {
                let old = *p;
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                let a = (LESION_RADIUS + 1.0 - d).clamp(0.0, 1.0) * 0.9;
                let red = [70.0, 12.0, 8.0];
                *p = Rgb(std::array::from_fn(|k| {
                    ((1.0 - a) * old[k] as f32 + a * red[k]).round() as u8
                }));
            }
        }
        img
    }

    /// A training lesion centre 40–140 px from the image centre, the whole lesion inside the
    /// field of view (its radius is at least 0.46 · 512 ≈ 236 px).
    fn spot(rng: &mut ChaCha8Rng) -> (f32, f32) {
        let (r, t) = (
            rng.random_range(40.0..140.0f32),
            rng.random_range(0.0..std::f32::consts::TAU),
        );
        (256.0 + r * t.cos(), 256.0 + r * t.sin())
    }

    /// Fine-tunes Lite0 from ImageNet weights to tell eyes with a lesion from eyes without,
    /// then checks that Grad-CAM of "lesion" peaks inside lesions painted at places not
    /// trained on, one per quadrant. Nothing is faked: the map comes from the gradients of the
    /// trained network.
    ///
    /// Measured with the head from the test's own generator, on the one-thread pool (2026-12-02,
    /// `cargo test -p fovea-host --bins grad_cam_peaks -- --nocapture`, 379 s beside a build):
    /// peaks 56.1, 61.9, 27.2 and 61.9 px from the lesion centres. Before both, on rayon's
    /// global pool (2026-11-25, `cargo test --workspace --bin host
    /// grad_cam_peaks`; 4 min 44 s, 3.0 GiB): 41.1, 56.2, 55.1 and 27.2 px; with other seeds
    /// (device 6, rng 10) 58.6, 53.4, 51.6 and 65.1 px, inside but nearer the rim. The same test at
    /// 256 px (8 × 8 map, radius 40, lesions 60 px out) put 2 of 4 peaks inside: they stayed in
    /// the cells next to the image centre (at 128 px, 4 × 4, 2 of 3).
    #[test]
    fn grad_cam_peaks_inside_a_single_large_lesion() {
        // On a one-thread rayon pool, so that every run computes the same thing: burn-flex
        // 0.22.1 sums large tensors with rayon's `.sum()` over 64 K-element chunks
        // (`sum_f32_parallel`), whose association follows how rayon splits the work, and with
        // other tests loading the cores that differed from run to run (one peak 80.4 px out,
        // radius 80, in a full `cargo test --workspace` on 2026-12-02; inside when run alone).
        // With one thread no work is stolen, so the splits and the sums are fixed. The other
        // run-to-run difference was the head's random start (below).
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread rayon pool")
            .install(lesion_peaks);
    }

    fn lesion_peaks() {
        let device = Device::flex();
        device.seed(5);
        // The whole image, uncropped: tensor pixels are image pixels, so the lesion
        // centre needs no mapping into the heatmap's coordinates.
        let pre = PreprocessConfig {
            size: SIDE,
            crop: Crop::None,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // Four eyes; every batch pairs each with and without a lesion drawn at a fresh place,
        // so the only thing that tells the classes apart is a lesion, wherever it is.
        let eyes = 4;
        let batch = |rng: &mut ChaCha8Rng, dev: &Device| {
            let mut x = Vec::new();
            for i in 0..eyes {
                x.extend(to_tensor(&eye(i, None), None, &pre));
                x.extend(to_tensor(&eye(i, Some(spot(rng))), None, &pre));
            }
            let side = SIDE as usize;
            let x = Tensor::<4>::from_data(TensorData::new(x, [2 * eyes, 3, side, side]), dev);
            let y: Vec<i64> = (0..2 * eyes as i64).map(|i| i % 2).collect();
            (
                x,
                Tensor::<1, Int>::from_data(TensorData::new(y, [2 * eyes]), dev),
            )
        };
        let arch = Architecture::new(Variant::Lite0, 2);
        let net = EfficientNetConfig::new(&arch, Head::Linear)
            .with_dropout(0.0)
            .with_drop_connect(0.0)
            .init(&device);
        // ImageNet features, as every real fine-tuning starts from.
        let Some(w) = crate::test_support::weights("efficientnet-lite0.pth") else {
            return;
        };
        let mut net = crate::train::import_pretrained(net, &w, Variant::Lite0).unwrap();
        // The one random part left, the fresh head, drawn from this test's own generator in
        // `Classifier::new`'s range (±1/√2 for 2 classes): burn-flex's generator is one for the
        // whole process, so other tests drawing from it at the same time changed this head,
        // and with it the training and the peaks, from run to run.
        let mut head_rng = ChaCha8Rng::seed_from_u64(11);
        let r = std::f32::consts::FRAC_1_SQRT_2;
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| head_rng.random_range(-r..r)).collect() };
        let [features, classes] = net.classifier.output.weight.dims();
        let weight = TensorData::new(draw(features * classes), [features, classes]);
        net.classifier.output.weight = Param::from_tensor(Tensor::from_data(weight, &device));
        let bias = TensorData::new(draw(classes), [classes]);
        net.classifier.output.bias = Some(Param::from_tensor(Tensor::from_data(bias, &device)));
        let mut net = net.train();
        // `host train`'s default BatchNorm momentum: as built (0.01) the running statistics
        // would lag far behind these few dozen steps and evaluation mode would see stale ones.
        crate::train::set_bn_momentum(&mut net, 0.1);
        let train = device.clone().autodiff();
        let loss_fn = CrossEntropyLossConfig::new().init(&train);
        let mut optim = AdamWConfig::new().init();
        let mut recent = Vec::new();
        for _ in 0..60 {
            let (x, y) = batch(&mut rng, &train);
            let loss = loss_fn.forward(net.forward(x), y);
            recent.push(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(2e-3, net, grads);
            if recent.len() >= 4 && recent[recent.len() - 4..].iter().all(|&l| l < 0.05) {
                break;
            }
        }
        let last = recent[recent.len().saturating_sub(4)..].iter().sum::<f32>() / 4.0;
        assert!(
            last < 0.3,
            "the network did not learn the lesion (losses {recent:?})"
        );
        // BatchNorm recalibration: forward passes in training mode with the final weights and
        // no step, so the running statistics evaluation uses catch up with the weights. The
        // parameters stop requiring gradients first: burn's autodiff keeps the graph of every
        // forward pass until the next backward, 30 of them held 18 GiB.
        let net = net.no_grad();
        for _ in 0..30 {
            let _ = net.forward(batch(&mut rng, &train).0);
        }
        let net = net.valid();
        let mut hits = 0;
        // One held-out lesion per quadrant, 120 px out from the image centre: a map biased
        // towards the centre cells misses them.
        for k in 0..4 {
            let t =
                std::f32::consts::FRAC_PI_4 * (2 * k + 1) as f32 + rng.random_range(-0.3..0.3f32);
            let centre = (256.0 + 120.0 * t.cos(), 256.0 + 120.0 * t.sin());
            // A training eye with the lesion at a new place: a network fine-tuned on 4 eyes is
            // not expected to generalise to unseen ones, and what is tested here is where
            // Grad-CAM looks, not generalisation.
            let img = eye(k, Some(centre));
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    to_tensor(&img, None, &pre),
                    [1, 3, SIDE as usize, SIDE as usize],
                ),
                &device,
            );
            let logits: Vec<f32> = net.forward(x.clone()).into_data().try_into_vec().unwrap();
            assert!(
                logits[1] > logits[0],
                "lesion eye classified negative: {logits:?}"
            );
            let heat = grad_cam(&net, x, &[1], &device);
            let (px, py) = heat.peak();
            let d = ((px as f32 - centre.0).powi(2) + (py as f32 - centre.1).powi(2)).sqrt();
            eprintln!("lesion at {centre:?}, Grad-CAM peak at ({px}, {py}), {d:.1} px away");
            if d <= LESION_RADIUS {
                hits += 1;
            }
        }
        assert_eq!(hits, 4, "Grad-CAM peak outside the lesion");
    }
}
