//! The ONNX model a bundle will carry: tract must load it, and the metadata `host export`
//! wrote must name the run's class names and preprocessing (by hash), so a model can never be
//! bundled with another run's configuration.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use shared::preprocess::PreprocessConfig;
use tract_onnx::prelude::*;

use crate::export::metadata::keys;

/// Checks `bytes` (the file `path`) against the run's `classes` and `preprocess`: the metadata
/// agrees, and tract loads and optimizes the graph at the run's input size.
pub fn check_model(
    path: &Path,
    bytes: &[u8],
    classes: &[String],
    preprocess: &PreprocessConfig,
) -> anyhow::Result<()> {
    let proto = shared::onnx::model::decode(bytes).with_context(|| path.display().to_string())?;
    let meta: HashMap<&str, &str> = proto
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    let get = |key: &str| {
        meta.get(key).copied().with_context(|| {
            format!(
                "{}: no `{key}` metadata (write the model with `host export`)",
                path.display()
            )
        })
    };
    let hash = get(keys::PREPROCESS_SHA256)?;
    ensure!(
        hash == preprocess.sha256_hex(),
        "{}: the model was exported with preprocessing {hash}, the run uses {} — \
         export this run's model",
        path.display(),
        preprocess.sha256_hex()
    );
    let names: Vec<String> = serde_json::from_str(get(keys::CLASS_NAMES)?).with_context(|| {
        format!(
            "{}: class_names metadata is not a JSON list",
            path.display()
        )
    })?;
    ensure!(
        names == classes,
        "{}: the model's classes {names:?} differ from the run's {classes:?}",
        path.display()
    );
    let side = preprocess.size as usize;
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .with_context(|| format!("{}: tract cannot load the model", path.display()))?
        .with_input_fact(0, f32::fact([1, 3, side, side]).into())
        .with_context(|| format!("{}: input is not 1×3×{side}×{side}", path.display()))?;
    let typed = model
        .into_optimized()
        .with_context(|| format!("{}: tract cannot optimize the model", path.display()))?;
    let out = typed.output_fact(0)?;
    let logits = out.shape.as_concrete().map(|s| s.to_vec());
    match logits.as_deref() {
        Some([1, n]) if *n == classes.len() => Ok(()),
        other => bail!(
            "{}: first output has shape {other:?}, expected [1, {}]",
            path.display(),
            classes.len()
        ),
    }
}
