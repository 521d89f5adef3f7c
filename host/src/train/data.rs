//! Training data in memory: every image decoded, gated and prepared once, then augmented and
//! turned into NCHW batches per step with shared's preprocessing.
//!
//! Images are prepared (FOV crop + resize to the model resolution) once, in parallel, and kept
//! as 8-bit RGB (3·s² bytes each: 1 000 images at 224 px are 150 MB). Ungradable images are
//! left out of training and counted: the model is never taught a label for a photograph the
//! gate would refuse on the device.
use std::path::PathBuf;

use anyhow::Context;
use image::RgbImage;
use rand::Rng;
use shared::dataset::Dataset;
use shared::decode::decode_file;
use shared::preprocess::{self, AugmentConfig, Circle, PreprocessConfig};
use shared::quality::{self, QualityConfig};

/// One prepared image and its label.
#[derive(Clone, Debug)]
pub struct Item {
    /// Model-resolution RGB, black outside the FOV.
    pub image: RgbImage,
    /// The FOV disc in `image` coordinates (fundus crops).
    pub circle: Option<Circle>,
    /// Class index.
    pub label: usize,
}

/// One file's outcome: a prepared item, or the path the gate refused and why.
type Loaded = Result<Item, (PathBuf, String)>;

/// A split held in memory.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Gradable, prepared items.
    pub items: Vec<Item>,
    /// Files the quality gate refused, with its reasons.
    pub ungradable: Vec<(PathBuf, String)>,
}

impl Split {
    /// Labels of the items, in order.
    pub fn labels(&self) -> Vec<usize> {
        self.items.iter().map(|i| i.label).collect()
    }
}

/// Decodes, gates and prepares `indices` of `data` on `threads` threads, keeping order.
pub fn load(
    data: &Dataset,
    indices: &[usize],
    pre: &PreprocessConfig,
    gate: &QualityConfig,
    threads: usize,
) -> anyhow::Result<Split> {
    let threads = threads.max(1);
    let chunk = indices.len().div_ceil(threads).max(1);
    let results: Vec<anyhow::Result<Vec<Loaded>>> = std::thread::scope(|s| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || part.iter().map(|&i| load_one(data, i, pre, gate)).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("loader thread panicked"))
            .collect()
    });
    let mut split = Split::default();
    for part in results {
        for r in part? {
            match r {
                Ok(item) => split.items.push(item),
                Err(refused) => split.ungradable.push(refused),
            }
        }
    }
    Ok(split)
}

fn load_one(
    data: &Dataset,
    index: usize,
    pre: &PreprocessConfig,
    gate: &QualityConfig,
) -> anyhow::Result<Loaded> {
    let sample = &data.samples[index];
    let decoded = decode_file(&sample.path)?;
    let report = quality::assess(&decoded.image, gate);
    if let quality::Verdict::Ungradable { reasons } = &report.verdict {
        let why = reasons
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(Err((sample.path.clone(), why)));
    }
    let prepared = preprocess::prepare(&decoded.image, pre, report.fov)
        .with_context(|| format!("preprocessing {}", sample.path.display()))?;
    Ok(Ok(Item {
        image: prepared.image,
        circle: prepared.circle,
        label: sample.label,
    }))
}

/// Builds one NCHW batch (`[n, 3, s, s]` flattened) and its labels; augments when `aug` is set.
pub fn batch<R: Rng>(
    split: &Split,
    indices: &[usize],
    pre: &PreprocessConfig,
    aug: Option<(&AugmentConfig, &mut R)>,
) -> (Vec<f32>, Vec<usize>) {
    let s = pre.size as usize;
    let per = 3 * s * s;
    let mut out = vec![0.0f32; indices.len() * per];
    let mut labels = Vec::with_capacity(indices.len());
    let mut aug = aug;
    for (slot, &i) in out.chunks_mut(per).zip(indices) {
        let item = &split.items[i];
        labels.push(item.label);
        match aug.as_mut() {
            Some((cfg, rng)) => {
                let (img, circle) = preprocess::augment(&item.image, item.circle, cfg, *rng);
                preprocess::write_tensor(&img, circle.as_ref(), pre, slot);
            }
            None => preprocess::write_tensor(&item.image, item.circle.as_ref(), pre, slot),
        }
    }
    (out, labels)
}

/// Every item of `split`, in order, as one NCHW batch without augmentation (scoring).
pub fn batch_all(split: &Split, pre: &PreprocessConfig) -> Vec<f32> {
    let all: Vec<usize> = (0..split.items.len()).collect();
    batch::<rand_chacha::ChaCha8Rng>(split, &all, pre, None).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use shared::dataset::CsvOptions;

    /// 12 synthetic eyes (one ungradable at this seed and rate) written with the generator.
    fn synthetic(dir: &std::path::Path) -> Dataset {
        let mut cfg = crate::synth::SynthConfig::new(12, 5, 128).unwrap();
        cfg.ungradable_rate = 0.09; // round(0.09·12) = 1
        crate::synth::generate(&cfg, dir).unwrap();
        Dataset::from_csv(
            dir.join("train.csv"),
            &CsvOptions {
                allow_empty_classes: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn loads_gates_prepares_and_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic(dir.path());
        let pre = PreprocessConfig {
            size: 64,
            ..Default::default()
        };
        let all: Vec<usize> = (0..data.len()).collect();
        let split = load(&data, &all, &pre, &QualityConfig::default(), 2).unwrap();
        assert_eq!(split.items.len() + split.ungradable.len(), 12);
        assert_eq!(split.ungradable.len(), 1, "{:?}", split.ungradable);
        let gradable: Vec<usize> = data
            .samples
            .iter()
            .filter(|s| s.path != split.ungradable[0].0)
            .map(|s| s.label)
            .collect();
        assert_eq!(split.labels(), gradable, "order kept");

        let (x, y) = batch::<ChaCha8Rng>(&split, &[0, 2], &pre, None);
        assert_eq!(x.len(), 2 * 3 * 64 * 64);
        assert_eq!(y, vec![split.items[0].label, split.items[2].label]);
        // Unaugmented batch = shared's tensor of the prepared image, bit for bit.
        let expected =
            preprocess::to_tensor(&split.items[2].image, split.items[2].circle.as_ref(), &pre);
        assert_eq!(&x[3 * 64 * 64..], &expected[..]);

        let aug = AugmentConfig::default();
        let run = |seed| {
            batch(
                &split,
                &[0, 1],
                &pre,
                Some((&aug, &mut ChaCha8Rng::seed_from_u64(seed))),
            )
            .0
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
