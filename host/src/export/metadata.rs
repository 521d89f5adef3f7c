//! The model's `metadata_props`: what a runtime needs besides the graph to use it correctly
//! (variant, task, class names, the exact preprocessing and its hash, the fovea version).
use shared::preprocess::PreprocessConfig;
use shared::task::Task;
use tract_onnx::pb::StringStringEntryProto;

use crate::model::scaling::Variant;
use crate::train::config::HeadKind;

/// Metadata keys, in the order written.
pub mod keys {
    /// EfficientNet variant (`b0`, `lite0`, …).
    pub const VARIANT: &str = "variant";
    /// Classifier head (`linear`, `mlp`).
    pub const HEAD: &str = "head";
    /// Task (`grade`, `referable`, `classes`).
    pub const TASK: &str = "task";
    /// Class names, a JSON array of strings; index = logit.
    pub const CLASS_NAMES: &str = "class_names";
    /// `PreprocessConfig` as canonical JSON.
    pub const PREPROCESS: &str = "preprocess";
    /// SHA-256 (hex) of the canonical preprocessing JSON.
    pub const PREPROCESS_SHA256: &str = "preprocess_sha256";
    /// The fovea version that wrote the file.
    pub const VERSION: &str = "fovea_version";
}

/// Everything the metadata records.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// Network variant.
    pub variant: Variant,
    /// Classifier head.
    pub head: HeadKind,
    /// Prediction task.
    pub task: Task,
    /// Class names, index = logit.
    pub class_names: Vec<String>,
    /// Preprocessing the model was trained with.
    pub preprocess: PreprocessConfig,
}

/// A value's serde name (`"grade"` → `grade`), for enums that serialise as plain strings.
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

impl Metadata {
    /// The `(key, value)` pairs written into the model.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            (keys::VARIANT, self.variant.to_string()),
            (keys::HEAD, serde_name(&self.head)),
            (keys::TASK, serde_name(&self.task)),
            (
                keys::CLASS_NAMES,
                serde_json::Value::from(self.class_names.clone()).to_string(),
            ),
            (keys::PREPROCESS, self.preprocess.canonical_json()),
            (keys::PREPROCESS_SHA256, self.preprocess.sha256_hex()),
            (keys::VERSION, env!("CARGO_PKG_VERSION").to_owned()),
        ]
    }

    /// As ONNX `metadata_props`.
    pub fn props(&self) -> Vec<StringStringEntryProto> {
        self.entries()
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: key.to_owned(),
                value,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_every_field() {
        let m = Metadata {
            variant: Variant::Lite0,
            head: HeadKind::Mlp,
            task: Task::Grade,
            class_names: vec!["0".into(), "a \"b\"".into()],
            preprocess: PreprocessConfig::default(),
        };
        let e: std::collections::BTreeMap<_, _> = m.entries().into_iter().collect();
        assert_eq!(e[keys::VARIANT], "lite0");
        assert_eq!(e[keys::HEAD], "mlp");
        assert_eq!(e[keys::TASK], "grade");
        assert_eq!(e[keys::CLASS_NAMES], r#"["0","a \"b\""]"#);
        // The hash is shared's (checked against Python there) of exactly the JSON written.
        assert_eq!(
            e[keys::PREPROCESS_SHA256],
            "024b7745d732185f43499fb04b4c6c96a0a0f7735b3dc10a81695408e7ddc144"
        );
        assert_eq!(
            e[keys::PREPROCESS],
            PreprocessConfig::default().canonical_json()
        );
        assert_eq!(m.props().len(), 7);
    }
}
