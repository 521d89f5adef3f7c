//! Inference over a prepared split: softmax probabilities, batch by batch, no augmentation.
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use shared::preprocess::PreprocessConfig;

use super::data::{Split, batch};
use crate::model::net::EfficientNet;

/// Row-major `[items, classes]` softmax probabilities of `model` (which must be in eval mode).
pub fn predict(
    model: &EfficientNet,
    split: &Split,
    pre: &PreprocessConfig,
    batch_size: usize,
    device: &Device,
) -> Vec<f32> {
    let s = pre.size as usize;
    let mut probs = Vec::new();
    let all: Vec<usize> = (0..split.items.len()).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let (x, _) = batch::<ChaCha8Rng>(split, chunk, pre, None);
        let x = Tensor::<4>::from_data(TensorData::new(x, [chunk.len(), 3, s, s]), device);
        let p = softmax(model.forward(x), 1);
        probs.extend(
            p.into_data()
                .try_into_vec::<f32>()
                .expect("f32 probabilities"),
        );
    }
    probs
}
