//! Pretrained weights: read a PyTorch (legacy pickle or zip) or safetensors state dict into
//! `f32` tensors by name.
//!
//! [`load`] sniffs the container from its first bytes:
//!
//! ```text
//! 80 02 8a 0a 6c fc 9c 46 f9 20 6a a8 50 19 ..  legacy torch.save (PyTorch < 1.6, or
//!                                               _use_new_zipfile_serialization=False):
//!                                               PROTO 2, LONG1 of 10 bytes = 0x1950a86a20f9469cfc6c
//! 50 4b 03 04 ..                                zip torch.save (PyTorch >= 1.6)
//! <u64 LE header length> 7b ..                  safetensors (JSON header opens with '{')
//! ```
//!
//! Every element type is widened (or, for `f64` and integers, rounded) to `f32`: integer
//! buffers such as BatchNorm's `num_batches_tracked` are kept, as `f32`, so a mapping can
//! still see and ignore them by name.
mod convert;
mod error;
mod onnx;
mod safetensors;
mod torch;

use std::cmp::Ordering;
use std::fmt;
use std::io::Read;
use std::path::Path;

pub use error::WeightsError;

/// The container a state dict was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `torch.save` before PyTorch 1.6: a sequence of pickles, then raw storages.
    TorchLegacy,
    /// `torch.save` since PyTorch 1.6: a zip of `data.pkl` and `data/<storage key>`.
    TorchZip,
    /// Hugging Face safetensors.
    Safetensors,
    /// An ONNX model's f32 initializers (`.onnx`).
    Onnx,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::TorchLegacy => "pytorch-legacy",
            Format::TorchZip => "pytorch-zip",
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
        })
    }
}

/// Element type a tensor had in the file, before it became `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F64 => "f64",
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::BF16 => "bf16",
            Dtype::I64 => "i64",
            Dtype::I32 => "i32",
            Dtype::I16 => "i16",
            Dtype::I8 => "i8",
            Dtype::U64 => "u64",
            Dtype::U32 => "u32",
            Dtype::U16 => "u16",
            Dtype::U8 => "u8",
            Dtype::Bool => "bool",
        })
    }
}

/// One tensor, contiguous row-major `f32` whatever its layout and type in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Extents, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type in the file.
    pub dtype: Dtype,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A state dict: tensors by name, in natural name order (`_blocks.2` before `_blocks.10`).
///
/// Not torch's insertion order: the PyTorch reader hands tensors back in a hash map, so
/// the order is made deterministic here rather than kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    /// The container it came from.
    pub format: Format,
    tensors: Vec<(String, Tensor)>,
}

impl StateDict {
    pub(crate) fn new(format: Format, mut tensors: Vec<(String, Tensor)>) -> Self {
        tensors.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        Self { format, tensors }
    }

    /// The tensor called `name`, if any.
    #[allow(dead_code)] // the model mapping's entry point; tests use it today
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors
            .binary_search_by(|(n, _)| natural_cmp(n, name))
            .ok()
            .map(|i| &self.tensors[i].1)
    }

    /// All tensors, in natural name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of tensors (parameters and buffers).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors (never true for what [`load`] returns).
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Elements over all tensors, buffers (running statistics, counters) included.
    pub fn total_elements(&self) -> usize {
        self.tensors.iter().map(|(_, t)| t.numel()).sum()
    }
}

/// Read the state dict in `path`, whichever of the three formats it is in.
pub fn load(path: impl AsRef<Path>) -> Result<StateDict, WeightsError> {
    let path = path.as_ref();
    let io = |cause| WeightsError::Io {
        path: path.to_owned(),
        cause,
    };
    // ONNX (protobuf) has no magic number: the extension says it.
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    {
        return onnx::load(path);
    }
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .map_err(io)?
        .take(16)
        .read_to_end(&mut head)
        .map_err(io)?;
    let dict = match sniff(&head) {
        Some(Sniffed::TorchLegacy) => torch::load(path, Format::TorchLegacy)?,
        Some(Sniffed::TorchZip) => torch::load(path, Format::TorchZip)?,
        Some(Sniffed::Safetensors) => safetensors::load(path)?,
        Some(Sniffed::OtherPickle) => {
            return Err(WeightsError::BadMagic {
                path: path.to_owned(),
            });
        }
        None => {
            let head = head
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            let head = if head.is_empty() {
                "nothing (empty file)".to_owned()
            } else {
                head
            };
            return Err(WeightsError::UnknownFormat {
                path: path.to_owned(),
                head,
            });
        }
    };
    if dict.is_empty() {
        return Err(WeightsError::NoTensors {
            path: path.to_owned(),
        });
    }
    Ok(dict)
}

/// What the first bytes of a file say it is.
#[derive(Debug, PartialEq)]
enum Sniffed {
    TorchLegacy,
    TorchZip,
    Safetensors,
    /// Starts with a pickle PROTO opcode but not torch's magic number.
    OtherPickle,
}

/// `PROTO 2`, `LONG1` of 10 bytes, then torch's `MAGIC_NUMBER` little-endian, as
/// `torch/serialization.py` `_legacy_save` pickles it (`pickle_module.dump(MAGIC_NUMBER, f,
/// protocol=pickle_protocol)`, protocol 2 by default).
const LEGACY_HEAD: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

fn sniff(head: &[u8]) -> Option<Sniffed> {
    if head.starts_with(&LEGACY_HEAD) {
        Some(Sniffed::TorchLegacy)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(Sniffed::TorchZip)
    } else if head.first() == Some(&0x80) {
        Some(Sniffed::OtherPickle)
    } else if head.len() > 8 && head[8] == b'{' {
        Some(Sniffed::Safetensors)
    } else {
        None
    }
}

/// Compare names with digit runs as numbers, so `_blocks.2.x` sorts before `_blocks.10.x`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then(na.cmp(nb)).then(da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn golden(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/weights")
            .join(name)
    }

    /// The same tiny state dict, saved three ways by `scripts/gen-golden-weights.py`.
    const GOLDEN: [(&str, Format); 3] = [
        ("legacy.pth", Format::TorchLegacy),
        ("zip.pth", Format::TorchZip),
        ("tiny.safetensors", Format::Safetensors),
    ];

    fn torch_name(d: Dtype) -> &'static str {
        match d {
            Dtype::F64 => "float64",
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::I64 => "int64",
            other => panic!("golden file has no {other}"),
        }
    }

    #[test]
    fn golden_files_match_what_torch_saved() {
        let text = std::fs::read_to_string(golden("expected.json")).unwrap();
        let expected: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        for (file, format) in GOLDEN {
            let dict = load(golden(file)).unwrap();
            assert_eq!(dict.format, format, "{file}");
            assert_eq!(dict.len(), expected.len(), "{file}");
            for (name, want) in &expected {
                let t = dict
                    .get(name)
                    .unwrap_or_else(|| panic!("{file}: {name} missing"));
                let shape: Vec<usize> = serde_json::from_value(want["shape"].clone()).unwrap();
                let values: Vec<f64> = serde_json::from_value(want["values"].clone()).unwrap();
                let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                assert_eq!(t.shape, shape, "{file}: {name}");
                assert_eq!(torch_name(t.dtype), want["dtype"], "{file}: {name}");
                assert_eq!(t.data, values, "{file}: {name}");
            }
        }
    }

    // >>> base = torch.arange(10.); base[2:6]                      tensor([2., 3., 4., 5.])
    // >>> torch.arange(6.).reshape(2, 3).t().flatten()             tensor([0., 3., 1., 4., 2., 5.])
    // >>> torch.tensor([0.5, -1.25, 65504.], dtype=torch.float16)  (65504 is f16's largest)
    // >>> float(torch.tensor(0.1, dtype=torch.bfloat16))           0.10009765625
    // >>> torch.manual_seed(0); torch.randn(3)                     tensor([ 1.5410, -0.2934, -2.1788])
    #[test]
    fn offsets_strides_and_narrow_types_come_out_right() {
        for (file, _) in GOLDEN {
            let d = load(golden(file)).unwrap();
            assert_eq!(d.get("view").unwrap().data, [2.0, 3.0, 4.0, 5.0], "{file}");
            let t = d.get("transposed").unwrap();
            assert_eq!(
                (t.shape.as_slice(), t.data.as_slice()),
                (&[3, 2][..], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0][..])
            );
            assert_eq!(d.get("half").unwrap().data, [0.5, -1.25, 65504.0], "{file}");
            assert_eq!(
                d.get("bf16").unwrap().data,
                [1.5, -3.0, 0.100_097_656],
                "{file}"
            );
            assert_eq!(d.get("f64").unwrap().data, [0.1, 2.5], "{file}");
            let n = d.get("bn.num_batches_tracked").unwrap();
            assert_eq!(
                (n.dtype, n.shape.len(), n.data.as_slice()),
                (Dtype::I64, 0, &[7.0][..])
            );
            assert_eq!(
                d.get("bn.running_var").unwrap().data,
                [1.540_996_1, -0.293_428_9, -2.178_789_4]
            );
            assert_eq!(
                d.total_elements(),
                8 + 3 + 1 + 3 + 3 + 2 + 10 + 4 + 6 + 1 + 1,
                "{file}"
            );
        }
    }

    #[test]
    fn names_come_in_natural_order() {
        let d = load(golden("legacy.pth")).unwrap();
        let names: Vec<&str> = d.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "base",
                "bf16",
                "blocks.2.w",
                "blocks.10.w",
                "bn.num_batches_tracked",
                "bn.running_var",
                "conv.weight",
                "f64",
                "half",
                "transposed",
                "view"
            ]
        );
        assert_eq!(
            natural_cmp("_blocks.02.x", "_blocks.2.x"),
            Ordering::Greater
        );
        assert_eq!(natural_cmp("a9", "a10"), Ordering::Less);
    }

    /// Write `bytes` to a file named `name` in a fresh temp dir.
    fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// Load `bytes` as a file and return the error message, which must name the file.
    fn error_for(name: &str, bytes: &[u8]) -> String {
        let (_dir, path) = scratch(name, bytes);
        let msg = load(&path).expect_err(name).to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        msg
    }

    #[test]
    fn rejects_truncated_files() {
        for (file, _) in GOLDEN {
            let bytes = std::fs::read(golden(file)).unwrap();
            for keep in [bytes.len() - 3, bytes.len() / 2, 20] {
                error_for(file, &bytes[..keep]);
            }
        }
    }

    #[test]
    fn rejects_bad_magic() {
        let mut bytes = std::fs::read(golden("legacy.pth")).unwrap();
        bytes[13] ^= 0xff; // last byte of the magic number
        let msg = error_for("bad_magic.pth", &bytes);
        assert!(msg.contains("no legacy magic number"), "{msg}");
    }

    #[test]
    fn rejects_unknown_formats_and_empty_files() {
        let msg = error_for("notes.txt", b"hello, not weights");
        assert!(msg.contains("starts with 68 65 6c 6c 6f"), "{msg}");
        let msg = error_for("empty.pth", b"");
        assert!(msg.contains("empty file"), "{msg}");
    }

    #[test]
    fn rejects_a_pickle_calling_an_unknown_global() {
        // GLOBAL is `c module\nname\n`: swap the tensor rebuild function for one torch never had.
        let bytes = std::fs::read(golden("legacy.pth")).unwrap();
        let (from, to) = (&b"_rebuild_tensor_v2"[..], &b"_rebuild_evil_v2xx"[..]);
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        let mut evil = bytes.clone();
        evil[at..at + from.len()].copy_from_slice(to);
        let msg = error_for("unknown_global.pth", &evil);
        assert!(
            msg.contains("unsupported Python type 'torch._utils._rebuild_evil_v2xx'"),
            "{msg}"
        );
    }

    // >>> sd = torch.load('efficientnet-lite0.pth', map_location='cpu')
    // >>> len(sd), sum(t.numel() for t in sd.values())                     (296, 4694073)
    // >>> sd['_conv_stem.weight'].flatten()[:4].tolist()
    // [-1.1103360652923584, -1.3087704181671143, -0.010156914591789246, 0.9208119511604309]
    // >>> sd['_fc.weight'][999, -3:].tolist(), sd['_fc.bias'][0].item()
    // ([-0.03588898852467537, 0.0053468868136405945, 0.04085797071456909], 0.032053910195827484)
    // >>> sd['_bn0.running_var'][:3].tolist(), sd['_bn0.num_batches_tracked']
    // ([1.631428599357605, 70.37157440185547, 14.1073579788208], tensor(0))
    // >>> sd['_blocks.15._project_conv.weight'][319, 1151, 0, 0].item()    -0.04374096170067787
    #[test]
    fn reads_the_real_efficientnet_lite0_weights() {
        let Some(path) = crate::test_support::weights("efficientnet-lite0.pth") else {
            return;
        };
        let d = load(&path).unwrap();
        assert_eq!(d.format, Format::TorchLegacy);
        assert_eq!((d.len(), d.total_elements()), (296, 4_694_073));
        let stem = d.get("_conv_stem.weight").unwrap();
        assert_eq!(stem.shape, [32, 3, 3, 3]);
        assert_eq!(
            stem.data[..4],
            [-1.110_336_1, -1.308_770_4, -0.010_156_915, 0.920_811_95]
        );
        let fc = d.get("_fc.weight").unwrap();
        assert_eq!(fc.shape, [1000, 1280]);
        assert_eq!(
            fc.data[999 * 1280 + 1277..],
            [-0.035_888_99, 0.005_346_887, 0.040_857_97]
        );
        assert_eq!(d.get("_fc.bias").unwrap().data[0], 0.032_053_91);
        assert_eq!(
            d.get("_bn0.running_var").unwrap().data[..3],
            [1.631_428_6, 70.371_574, 14.107_358]
        );
        assert_eq!(d.get("_bn0.num_batches_tracked").unwrap().data, [0.0]);
        let project = d.get("_blocks.15._project_conv.weight").unwrap();
        assert_eq!(project.shape, [320, 1152, 1, 1]);
        assert_eq!(project.data[319 * 1152 + 1151], -0.043_740_96);
    }
}
