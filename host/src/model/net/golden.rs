//! Agreement with timm: the stem conv with TF padding, one SE block, and whole Lite0 and B0
//! networks, against `host/tests/golden/net/<case>/` from `scripts/gen-golden-net.py`
//! (timm 1.0.31, torch 2.15, CPU).
//!
//! No weights are stored: both sides fill every parameter and BN buffer, in timm's
//! `state_dict` order, from the same integer hash ([`hash_unit`]); the files hold the
//! expected outputs and the list of shapes filled, which must match ours tensor for tensor.
//! The references are float64 forwards of those float32 weights and inputs; single layers
//! must agree within 1e-4, whole networks within 1e-3 (relative above 1): on the whole Lite0
//! torch's own float32 forward is 4.2e-4 from the float64 one (burn's: 3.2e-4).
use std::path::PathBuf;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Deserialize;

use super::mbconv::MbConv;
use super::padding::Padding;
use super::{EfficientNetConfig, Head};
use crate::model::arch::{Activation, Block};
use crate::model::block::BlockKind;
use crate::model::{Architecture, Variant};

/// Uniform values in [−1, 1) from a 32-bit integer mix of (p, i), i = 0..numel; the Python
/// `hash_unit` exactly.
fn hash_unit(numel: usize, p: usize) -> Vec<f64> {
    (0..numel as u64)
        .map(|i| {
            let m = 0xFFFF_FFFFu64;
            let mut x = (i * 2_654_435_761 + p as u64 * 40_503 + 12_345) & m;
            for _ in 0..2 {
                x ^= x >> 16;
                x = (x * 0x045D_9F3B) & m;
            }
            x ^= x >> 16;
            x as f64 / 2f64.powi(31) - 1.0
        })
        .collect()
}

/// Fills a module in traversal order with the script's pattern, recording the PyTorch-layout
/// shape of each tensor (burn's `Linear` weight is `[in, out]`, PyTorch's `[out, in]`).
struct Filler {
    path: Vec<String>,
    shapes: Vec<Vec<usize>>,
}

impl ModuleMapper for Filler {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let p = self.shapes.len();
        let name = self.path.last().cloned().unwrap_or_default();
        let dims = param.lazy_shape().dims::<D>();
        // PyTorch layout: a rank-2 weight is transposed.
        let torch_dims: Vec<usize> = if D == 2 {
            vec![dims[1], dims[0]]
        } else {
            dims.to_vec()
        };
        let numel: usize = torch_dims.iter().product();
        let s = hash_unit(numel, p);
        let values: Vec<f32> = s
            .iter()
            .map(|&s| {
                let v = match name.as_str() {
                    "weight" => s * (6.0 / (numel / torch_dims[0]) as f64).sqrt(),
                    "bias" | "beta" | "running_mean" => 0.1 * s,
                    "gamma" => 1.0 + 0.2 * s,
                    "running_var" => 0.5 + 0.25 * (s + 1.0),
                    other => panic!("unexpected tensor {other} at {:?}", self.path),
                };
                v as f32
            })
            .collect();
        self.shapes.push(torch_dims.clone());
        param.map(|t| {
            let device = t.device();
            let x = Tensor::<D>::from_data(TensorData::new(values, torch_dims), &device);
            if D == 2 { x.transpose() } else { x }
        })
    }
}

#[derive(Deserialize)]
struct Case {
    input: Vec<usize>,
    shapes: Vec<Vec<usize>>,
}

#[derive(Deserialize)]
struct Expected {
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/net")
        .join(case)
}

fn read<T: for<'de> Deserialize<'de>>(case: &str, file: &str) -> T {
    let path = dir(case).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Fill `module` and check the tensors filled are timm's, in timm's order.
fn fill<M: Module>(module: M, case: &Case) -> M {
    let mut filler = Filler {
        path: Vec::new(),
        shapes: Vec::new(),
    };
    let module = module.map(&mut filler);
    assert_eq!(
        filler.shapes, case.shapes,
        "tensor shapes in state_dict order"
    );
    module
}

/// x[i] = sin(0.11·i) + 0.5·cos(0.023·i) over the flat NCHW index, as the script.
fn input(shape: &[usize], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|i| ((0.11 * i as f64).sin() + 0.5 * (0.023 * i as f64).cos()) as f32)
        .collect();
    Tensor::from_data(TensorData::new(data, shape.to_vec()), device)
}

/// |got − want| ≤ tol · max(1, |want|) everywhere.
fn assert_close<const D: usize>(got: Tensor<D>, case: &str, file: &str, tol: f64) {
    let want: Expected = read(case, file);
    assert_eq!(got.dims().to_vec(), want.shape, "{case}/{file} shape");
    let got: Vec<f32> = got.into_data().try_into_vec_as::<f32>().unwrap();
    for (i, (&g, &w)) in got.iter().zip(&want.data).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= tol * w.abs().max(1.0),
            "{case}/{file}[{i}]: {g} vs {w}"
        );
    }
}

/// Tolerance of a single layer.
const LAYER: f64 = 1e-4;
/// Tolerance of a whole network (see the module doc).
const NETWORK: f64 = 1e-3;

#[test]
fn stem_tf_same_padding() {
    // timm create_conv2d(3, 8, 3, stride=2, padding="same", bias=False) on 17×16: TF pads
    // rows 1/1, columns 0/1.
    let case: Case = read("stem_same", "case.json");
    let device = Device::flex();
    let conv = Conv2dConfig::new([3, 8], [3, 3])
        .with_stride([2, 2])
        .with_padding(Padding::TfSame.config(3))
        .with_bias(false)
        .init(&device);
    let conv = fill(conv, &case);
    let y = conv.forward(input(&case.input, &device));
    assert_close(y, "stem_same", "expected.json", LAYER);
}

#[test]
fn ir_block_k5_s2_with_se() {
    // timm InvertedResidual(24, 40, dw_kernel_size=5, stride=2, pad_type="same", exp_ratio=6,
    // SiLU, BN eps 1e-3, SE 6 channels), eval.
    let case: Case = read("ir_k5_s2_se", "case.json");
    let device = Device::flex();
    let block = Block {
        stage: 2,
        kind: BlockKind::InvertedResidual,
        in_channels: 24,
        mid_channels: 144,
        out_channels: 40,
        kernel: 5,
        stride: 2,
        se_channels: Some(6),
        residual: false,
        drop_connect: 0.0,
    };
    let m = MbConv::new(&block, Activation::Silu, Padding::TfSame, 1.0, &device);
    let m = fill(m, &case);
    let y = m.forward(input(&case.input, &device));
    assert_close(y, "ir_k5_s2_se", "expected.json", LAYER);
}

/// timm `tf_efficientnet_lite0` (5 classes, no dropout or drop path, BN momentum 0.01) at
/// 64×64, batch 2: features and logits in eval, logits and the stem BN's updated running
/// statistics after one train-mode forward.
#[test]
fn lite0_matches_timm() {
    let case: Case = read("lite0_64", "case.json");
    let device = Device::flex();
    let arch = Architecture::new(Variant::Lite0, 5);
    let net = EfficientNetConfig::new(&arch, Head::Linear)
        .with_dropout(0.0)
        .with_drop_connect(0.0)
        .init(&device);
    let net = fill(net, &case);
    let x = input(&case.input, &device);
    assert_close(
        net.forward_features(x.clone()),
        "lite0_64",
        "features.json",
        NETWORK,
    );
    assert_close(net.forward(x.clone()), "lite0_64", "logits.json", NETWORK);

    let net = net.train();
    let logits = net.forward(Tensor::from_data(x.into_data(), &device.autodiff()));
    assert_close(logits, "lite0_64", "train_logits.json", NETWORK);
    let mean = net.stem.bn.running_mean.value_sync();
    assert_close(mean, "lite0_64", "stem_running_mean.json", LAYER);
    // PyTorch updates with the unbiased batch variance, burn with the biased one: over
    // 2·32·32 values the two differ by 1/2047, 0.01·var/2047 ≈ 2e-5 here.
    let var = net.stem.bn.running_var.value_sync();
    assert_close(var, "lite0_64", "stem_running_var.json", LAYER);
}

/// timm `tf_efficientnet_b0` (3 classes; SE and SiLU) at 64×64, batch 2, eval.
#[test]
fn b0_matches_timm() {
    let case: Case = read("b0_64", "case.json");
    let device = Device::flex();
    let arch = Architecture::new(Variant::B0, 3);
    let net = EfficientNetConfig::new(&arch, Head::Linear).init(&device);
    let net = fill(net, &case);
    let logits = net.forward(input(&case.input, &device));
    assert_close(logits, "b0_64", "logits.json", NETWORK);
}

#[test]
fn hash_matches_python() {
    // scripts/gen-golden-net.py: hash_unit(8, 0), hash_unit(3, 5)
    let a = hash_unit(8, 0);
    let expected = [
        -0.18623553542420268,
        -0.0858155800960958,
        -0.7381075876764953,
        0.7045187489129603,
        -0.19854425312951207,
        -0.19933705544099212,
        0.3696275735273957,
        0.4447294855490327,
    ];
    assert_eq!(a, expected);
    let b = hash_unit(3, 5);
    assert_eq!(
        b,
        [-0.6232180357910693, 0.2720433664508164, 0.32377884117886424]
    );
}
