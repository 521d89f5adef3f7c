//! Calibration: the fp32 model runs (in tract) on images from the run's training split, and an
//! observer turns the values every chosen tensor took into the range it is quantized over.
//! MinMax needs one pass; Percentile a second one, filling a histogram over the first's range.
use std::collections::BTreeMap;

use anyhow::Context;
use tract_onnx::pb::ModelProto;

use super::observer::{Histogram, MinMax, Observer, Range};
use super::runner::Runner;

/// The range of each of `tensors` over `images` (`[n, 3, side, side]` flattened).
pub fn ranges(
    proto: &ModelProto,
    side: usize,
    tensors: &[String],
    images: &[f32],
    observer: Observer,
) -> anyhow::Result<BTreeMap<String, Range>> {
    anyhow::ensure!(!images.is_empty(), "no calibration images");
    let runner = Runner::tapping(proto, side, tensors)
        .context("building the calibration model (Conv inputs as outputs)")?;
    let per = 3 * side * side;
    let mut minmax = vec![MinMax::default(); tensors.len()];
    for chw in images.chunks(per) {
        for (m, values) in minmax.iter_mut().zip(runner.run(chw)?) {
            m.observe(&values);
        }
    }
    let full: Vec<Range> = tensors
        .iter()
        .zip(&minmax)
        .map(|(name, m)| {
            m.range()
                .with_context(|| format!("tensor {name} held no finite value in calibration"))
        })
        .collect::<anyhow::Result<_>>()?;
    let chosen = match observer {
        Observer::MinMax => full,
        Observer::Percentile(p) => {
            let mut hist: Vec<Histogram> = full.iter().map(|&r| Histogram::new(r)).collect();
            for chw in images.chunks(per) {
                for (h, values) in hist.iter_mut().zip(runner.run(chw)?) {
                    h.observe(&values);
                }
            }
            hist.iter().map(|h| h.percentile_range(p)).collect()
        }
    };
    Ok(tensors.iter().cloned().zip(chosen).collect())
}
