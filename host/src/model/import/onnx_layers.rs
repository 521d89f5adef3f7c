//! The parameterised layers of an ONNX graph in execution order: what a structural weight
//! import reads when the initializer names mean nothing. timm's `torch.onnx.export` folds each
//! BatchNorm into an anonymous `onnx::Conv_N` weight and bias; Keras through tf2onnx folds it
//! into the regular convs but leaves a depthwise conv's BatchNorm as a per-channel `Mul` and
//! `Add`, keeps `Pad` nodes for TF "SAME" on stride-2 layers, and writes the classifier as
//! `MatMul` + `Add`.
//!
//! - A **conv layer** is a `Conv` with a constant weight (and bias), followed by what directly
//!   and only consumes its output when that is a per-channel affine map of constants:
//!   `BatchNormalization`, `Mul` / `Div` (scale), `Add` / `Sub` (shift), in any sequence.
//!   Its padding is its own (`pads`, `auto_pad`) plus a zero-constant `Pad` node feeding it.
//! - A **dense layer** is `Gemm`, or `MatMul` (+ `Add` of a constant), with a constant weight.
//!
//! Constants are initializers and `Constant` nodes, also through `Identity` nodes (timm's
//! exports tie equal biases that way); constant `DequantizeLinear` weights (an
//! int8 `host quantize` file) are folded to f32 first, as the device does.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use shared::onnx::initializer::{floats, int64s};
use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

/// A per-channel affine map applied to a conv's output, in graph order.
#[derive(Debug, Clone, PartialEq)]
pub enum Affine {
    /// `y = x · s`.
    Scale(Vec<f32>),
    /// `y = x + t`.
    Shift(Vec<f32>),
    /// ONNX `BatchNormalization` in inference form: `γ (x − μ) / √(σ² + ε) + β`.
    BatchNorm {
        /// γ.
        gamma: Vec<f32>,
        /// β.
        beta: Vec<f32>,
        /// μ.
        mean: Vec<f32>,
        /// σ².
        var: Vec<f32>,
        /// ε.
        epsilon: f32,
    },
}

/// How a conv pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPads {
    /// Fixed `(top, left)` before and `(bottom, right)` after.
    Explicit {
        /// Top, left.
        begin: [usize; 2],
        /// Bottom, right.
        end: [usize; 2],
    },
    /// `auto_pad = SAME_UPPER`: TF "SAME", the odd remainder after.
    SameUpper,
    /// `auto_pad = SAME_LOWER`: the odd remainder before.
    SameLower,
}

/// One `Conv` node with what it folds in.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLayer {
    /// The node's name (its output's when unnamed).
    pub node: String,
    /// `[out, in / group, kh, kw]`.
    pub shape: [usize; 4],
    /// Row-major weight.
    pub weight: Vec<f32>,
    /// The conv's own bias.
    pub bias: Option<Vec<f32>>,
    /// `group` attribute (the output channels for a depthwise conv).
    pub group: usize,
    /// `strides` attribute.
    pub stride: [usize; 2],
    /// Padding, a feeding `Pad` node included.
    pub pads: ConvPads,
    /// Affine maps folded in after the conv.
    pub affine: Vec<Affine>,
}

impl ConvLayer {
    /// The layer as `scale ⊙ conv(x, weight) + shift`, per output channel.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.shape[0];
        let mut scale = vec![1.0f32; c];
        let mut shift = self.bias.clone().unwrap_or_else(|| vec![0.0; c]);
        for a in &self.affine {
            match a {
                Affine::Scale(s) => (0..c).for_each(|i| {
                    scale[i] *= s[i];
                    shift[i] *= s[i];
                }),
                Affine::Shift(t) => (0..c).for_each(|i| shift[i] += t[i]),
                Affine::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    epsilon,
                } => (0..c).for_each(|i| {
                    let a = gamma[i] / (var[i] + epsilon).sqrt();
                    scale[i] *= a;
                    shift[i] = a * (shift[i] - mean[i]) + beta[i];
                }),
            }
        }
        (scale, shift)
    }
}

/// One fully connected layer: `y = x · weight + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// The node's name (its output's when unnamed).
    pub node: String,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// `[inputs, outputs]`, row-major (burn's `Linear` layout).
    pub weight: Vec<f32>,
    /// `outputs` values (zeros when the file has none).
    pub bias: Vec<f32>,
}

/// The parameterised layers of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxLayers {
    /// Conv layers in execution order.
    pub convs: Vec<ConvLayer>,
    /// Dense layers in execution order.
    pub dense: Vec<DenseLayer>,
    /// Operator types between the graph input and the first conv (input scaling,
    /// normalisation, layout transposes the file applies itself).
    pub preamble: Vec<String>,
    /// Height and width of the image input when the file fixes them (NCHW or NHWC, 3
    /// channels): TF "SAME" padding depends on them.
    pub input_size: Option<[usize; 2]>,
}

/// Reads the layers of the ONNX model in `path`.
pub fn read(path: &Path) -> anyhow::Result<OnnxLayers> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = shared::onnx::model::decode(&bytes).with_context(|| path.display().to_string())?;
    let mut graph = model
        .graph
        .with_context(|| format!("{}: the ONNX model has no graph", path.display()))?;
    shared::onnx::dequant::fold_constant_dequantize(&mut graph)
        .with_context(|| format!("{}", path.display()))?;
    layers(&graph).with_context(|| format!("{}", path.display()))
}

/// The layers of `graph` (nodes in the topological order ONNX requires).
pub fn layers(graph: &GraphProto) -> anyhow::Result<OnnxLayers> {
    let g = Graph::new(graph);
    let mut out = OnnxLayers {
        convs: Vec::new(),
        dense: Vec::new(),
        preamble: Vec::new(),
        input_size: input_size(graph),
    };
    for node in &graph.node {
        match node.op_type.as_str() {
            "Conv" => out.convs.push(g.conv(node)?),
            "Gemm" | "MatMul" => {
                if let Some(d) = g.dense(node)? {
                    out.dense.push(d)
                }
            }
            op if out.convs.is_empty() => out.preamble.push(op.to_owned()),
            _ => {}
        }
    }
    Ok(out)
}

/// Height and width of the first graph input that is not an initializer, when fixed.
fn input_size(graph: &GraphProto) -> Option<[usize; 2]> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
    use tract_onnx::pb::type_proto::Value as Type;
    let info = graph
        .input
        .iter()
        .find(|i| !graph.initializer.iter().any(|t| t.name == i.name))?;
    let Some(Type::TensorType(t)) = info.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims: Vec<Option<usize>> = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(v)) if v > 0 => Some(v as usize),
            _ => None,
        })
        .collect();
    match dims[..] {
        [_, Some(3), Some(h), Some(w)] | [_, Some(h), Some(w), Some(3)] => Some([h, w]),
        _ => None,
    }
}

/// Name lookups over one graph.
struct Graph<'a> {
    constants: HashMap<&'a str, &'a TensorProto>,
    producer: HashMap<&'a str, &'a NodeProto>,
    consumers: HashMap<&'a str, Vec<&'a NodeProto>>,
    outputs: Vec<&'a str>,
}

fn node_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name.clone()
    }
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

fn attr_int(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attr_float(n: &NodeProto, name: &str) -> Option<f32> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn attr_string(n: &NodeProto, name: &str) -> Option<String> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl<'a> Graph<'a> {
    fn new(graph: &'a GraphProto) -> Self {
        let mut constants: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for n in &graph.node {
            for o in &n.output {
                producer.insert(o.as_str(), n);
            }
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                consumers.entry(i.as_str()).or_default().push(n);
            }
            if n.op_type == "Constant"
                && let (Some(o), Some(t)) = (
                    n.output.first(),
                    n.attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .and_then(|a| a.t.as_ref()),
                )
            {
                constants.insert(o.as_str(), t);
            }
        }
        Graph {
            constants,
            producer,
            consumers,
            outputs: graph.output.iter().map(|o| o.name.as_str()).collect(),
        }
    }

    /// f32 values and shape of the constant `name` (through `Identity` nodes, which
    /// `torch.onnx.export` writes for tied initializers), or `None` when it is computed.
    fn f32_constant(&self, name: &str) -> anyhow::Result<Option<(Vec<f32>, Vec<usize>)>> {
        let mut name = name;
        // Bounded: a malformed graph may loop an Identity back onto itself.
        for _ in 0..=self.producer.len() {
            match self.producer.get(name).filter(|p| p.op_type == "Identity") {
                Some(id) => name = id.input.first().map(String::as_str).unwrap_or(""),
                None => break,
            }
        }
        let Some(t) = self.constants.get(name) else {
            return Ok(None);
        };
        let Some(v) = floats(t)? else {
            return Ok(None);
        };
        Ok(Some((
            v,
            t.dims.iter().map(|&d| d.max(0) as usize).collect(),
        )))
    }

    /// The constant weight feeding `node` at input `i`, or an error naming what computes it.
    fn weight(&self, node: &NodeProto, i: usize) -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
        let name = node.input.get(i).map(String::as_str).unwrap_or("");
        if let Some(w) = self.f32_constant(name)? {
            return Ok(w);
        }
        let from = self
            .producer
            .get(name)
            .map(|p| format!("computed by a {} node", p.op_type))
            .unwrap_or_else(|| "a graph input".to_owned());
        bail!(
            "{} {}: weight '{name}' is {from}, not a stored constant (structural import reads \
             constant weights only; fold constants first, e.g. with onnxsim)",
            node.op_type,
            node_name(node)
        )
    }

    /// The one node reading `tensor`, when exactly one does and it is not a graph output.
    fn sole_consumer(&self, tensor: &str) -> Option<&'a NodeProto> {
        match self.consumers.get(tensor).map(Vec::as_slice) {
            Some([n]) if !self.outputs.contains(&tensor) => Some(n),
            _ => None,
        }
    }

    /// `node`'s other input as `channels` per-channel values (a scalar is broadcast) when it is
    /// a constant shaped `[C]`-per-channel for NCHW (`[C, 1, 1]`, `[1, C, 1, 1]`, or one value).
    fn per_channel(
        &self,
        node: &NodeProto,
        data: &str,
        channels: usize,
    ) -> anyhow::Result<Option<Vec<f32>>> {
        if node.input.len() != 2 || !node.input.iter().any(|i| i == data) {
            return Ok(None);
        }
        let other = if node.input[0] == data {
            &node.input[1]
        } else {
            &node.input[0]
        };
        let Some((v, dims)) = self.f32_constant(other)? else {
            return Ok(None);
        };
        let per_channel = v.len() == channels
            && (dims == [channels, 1, 1] || dims == [1, channels, 1, 1] || channels == 1);
        Ok(if v.len() == 1 {
            Some(vec![v[0]; channels])
        } else if per_channel {
            Some(v)
        } else {
            None
        })
    }

    fn conv(&self, node: &NodeProto) -> anyhow::Result<ConvLayer> {
        let name = node_name(node);
        let (weight, dims) = self.weight(node, 1)?;
        let shape: [usize; 4] = dims
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("Conv {name}: weight shape {dims:?} is not 2-D conv"))?;
        let out = shape[0];
        let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
            Some(_) => Some(self.weight(node, 2)?.0),
            None => None,
        };
        let pair = |v: Option<Vec<i64>>, default: usize| -> [usize; 2] {
            match v.as_deref() {
                Some([a, b]) => [*a as usize, *b as usize],
                _ => [default; 2],
            }
        };
        let stride = pair(attr_ints(node, "strides"), 1);
        let mut pads = match attr_string(node, "auto_pad").as_deref() {
            Some("SAME_UPPER") => ConvPads::SameUpper,
            Some("SAME_LOWER") => ConvPads::SameLower,
            _ => match attr_ints(node, "pads").as_deref() {
                Some([t, l, b, r]) => ConvPads::Explicit {
                    begin: [*t as usize, *l as usize],
                    end: [*b as usize, *r as usize],
                },
                _ => ConvPads::Explicit {
                    begin: [0; 2],
                    end: [0; 2],
                },
            },
        };
        if let (ConvPads::Explicit { begin, end }, Some(extra)) =
            (&mut pads, self.pad_before(node)?)
        {
            for a in 0..2 {
                begin[a] += extra[a];
                end[a] += extra[2 + a];
            }
        }
        // What follows: per-channel affine maps of constants, while they are the only reader.
        let mut affine = Vec::new();
        let mut cur = node.output.first().map(String::as_str).unwrap_or("");
        while let Some(next) = self.sole_consumer(cur) {
            let step = match next.op_type.as_str() {
                "BatchNormalization" if next.input.first().map(String::as_str) == Some(cur) => {
                    let p = |i: usize| -> anyhow::Result<Option<Vec<f32>>> {
                        Ok(next
                            .input
                            .get(i)
                            .map(|n| self.f32_constant(n))
                            .transpose()?
                            .flatten()
                            .filter(|(v, _)| v.len() == out)
                            .map(|(v, _)| v))
                    };
                    match (p(1)?, p(2)?, p(3)?, p(4)?) {
                        (Some(gamma), Some(beta), Some(mean), Some(var)) => {
                            Some(Affine::BatchNorm {
                                gamma,
                                beta,
                                mean,
                                var,
                                epsilon: attr_float(next, "epsilon").unwrap_or(1e-5),
                            })
                        }
                        _ => None,
                    }
                }
                "Mul" => self.per_channel(next, cur, out)?.map(Affine::Scale),
                "Div" if next.input.first().map(String::as_str) == Some(cur) => self
                    .per_channel(next, cur, out)?
                    .map(|v| Affine::Scale(v.iter().map(|d| 1.0 / d).collect())),
                "Add" => self.per_channel(next, cur, out)?.map(Affine::Shift),
                "Sub" if next.input.first().map(String::as_str) == Some(cur) => self
                    .per_channel(next, cur, out)?
                    .map(|v| Affine::Shift(v.iter().map(|d| -d).collect())),
                _ => None,
            };
            let Some(step) = step else { break };
            affine.push(step);
            cur = next.output.first().map(String::as_str).unwrap_or("");
        }
        Ok(ConvLayer {
            node: name,
            shape,
            weight,
            bias,
            group: attr_int(node, "group").unwrap_or(1).max(1) as usize,
            stride,
            pads,
            affine,
        })
    }

    /// Spatial `[top, left, bottom, right]` of a zero-constant NCHW `Pad` node feeding `conv`.
    fn pad_before(&self, conv: &NodeProto) -> anyhow::Result<Option<[usize; 4]>> {
        let input = conv.input.first().map(String::as_str).unwrap_or("");
        let Some(pad) = self.producer.get(input).filter(|p| p.op_type == "Pad") else {
            return Ok(None);
        };
        let mode = attr_string(pad, "mode").unwrap_or_else(|| "constant".to_owned());
        let pads = match pad
            .input
            .get(1)
            .and_then(|n| self.constants.get(n.as_str()))
        {
            Some(t) => int64s(t)?,
            None => attr_ints(pad, "pads"), // opset < 11
        };
        let value = match pad.input.get(2).filter(|v| !v.is_empty()) {
            Some(v) => self
                .f32_constant(v)?
                .map(|(v, _)| v.first().copied().unwrap_or(0.0)),
            None => Some(0.0),
        };
        if pads.is_none() && pad.input.get(1).is_some_and(|n| !n.is_empty()) {
            bail!(
                "Pad {} before Conv {}: its pads are computed from the input shape at run time \
                 (timm's tf_* models pad that way); fold them to constants first, e.g. with \
                 onnxruntime (SessionOptions graph_optimization_level = ORT_ENABLE_BASIC, \
                 optimized_model_filepath = the file to import) or onnxsim",
                node_name(pad),
                node_name(conv)
            );
        }
        match (mode.as_str(), pads.as_deref(), value) {
            ("constant", Some(&[0, 0, t, l, 0, 0, b, r]), Some(0.0))
                if t.min(l).min(b).min(r) >= 0 =>
            {
                Ok(Some([t as usize, l as usize, b as usize, r as usize]))
            }
            _ => bail!(
                "Pad {} before Conv {}: only zero padding of the spatial axes is read (mode {mode}, \
                 pads {pads:?})",
                node_name(pad),
                node_name(conv)
            ),
        }
    }

    fn dense(&self, node: &NodeProto) -> anyhow::Result<Option<DenseLayer>> {
        let name = node_name(node);
        let gemm = node.op_type == "Gemm";
        // A MatMul of two activations (attention, say) is not a layer.
        let b = node.input.get(1).map(String::as_str).unwrap_or("");
        if !gemm && self.f32_constant(b)?.is_none() {
            return Ok(None);
        }
        let (w, dims) = self.weight(node, 1)?;
        let [rows, cols] = dims[..] else {
            bail!("{} {name}: weight shape {dims:?} is not 2-D", node.op_type);
        };
        if gemm && attr_int(node, "transA").unwrap_or(0) != 0 {
            bail!("Gemm {name}: transA = 1 is not a dense layer on its input");
        }
        let trans_b = gemm && attr_int(node, "transB").unwrap_or(0) != 0;
        let alpha = if gemm {
            attr_float(node, "alpha").unwrap_or(1.0)
        } else {
            1.0
        };
        let (inputs, outputs) = if trans_b { (cols, rows) } else { (rows, cols) };
        let weight: Vec<f32> = if trans_b {
            (0..inputs)
                .flat_map(|i| (0..outputs).map(move |o| (i, o)))
                .map(|(i, o)| alpha * w[o * inputs + i])
                .collect()
        } else {
            w.iter().map(|v| alpha * v).collect()
        };
        let mut bias = vec![0.0f32; outputs];
        if gemm && node.input.get(2).is_some_and(|c| !c.is_empty()) {
            let beta = attr_float(node, "beta").unwrap_or(1.0);
            let (c, _) = self.weight(node, 2)?;
            match c.len() {
                1 => bias.iter_mut().for_each(|b| *b = beta * c[0]),
                n if n == outputs => bias.iter_mut().zip(&c).for_each(|(b, v)| *b = beta * v),
                n => bail!("Gemm {name}: bias has {n} values for {outputs} outputs"),
            }
        }
        let out_name = node.output.first().map(String::as_str).unwrap_or("");
        if let Some(add) = self.sole_consumer(out_name).filter(|n| n.op_type == "Add") {
            let other = add.input.iter().find(|i| *i != out_name);
            if let Some((v, _)) = other.map(|o| self.f32_constant(o)).transpose()?.flatten()
                && v.len() == outputs
            {
                bias.iter_mut().zip(&v).for_each(|(b, v)| *b += v);
            }
        }
        Ok(Some(DenseLayer {
            node: name,
            inputs,
            outputs,
            weight,
            bias,
        }))
    }
}

#[cfg(test)]
mod tests {
    use shared::onnx::initializer::raw_tensor;
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{AttributeProto, ValueInfoProto};

    use super::*;

    fn f32s(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        raw_tensor(name, dims, DataType::Float, raw)
    }

    fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: format!("{op}_{output}"),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        }
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i: v,
            ..Default::default()
        }
    }

    fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            f: v,
            ..Default::default()
        }
    }

    /// Pad → Conv → Mul → Add → BatchNormalization → Relu → GAP → Flatten → Gemm(transB,
    /// α, β) → MatMul → Add: every piece the reader folds, with hand-computed results.
    fn graph() -> GraphProto {
        let pads = [0i64, 0, 0, 0, 0, 0, 1, 1];
        GraphProto {
            node: vec![
                node("Pad", &["x", "pads"], "xp", vec![]),
                node(
                    "Conv",
                    &["xp", "w"],
                    "c",
                    vec![ints("strides", &[2, 2]), ints("pads", &[0, 0, 0, 0])],
                ),
                node("Mul", &["c", "s"], "m", vec![]),
                node("Add", &["t", "m"], "a", vec![]),
                node(
                    "BatchNormalization",
                    &["a", "gamma", "beta", "mean", "var"],
                    "b",
                    vec![float("epsilon", 1.0)],
                ),
                node("Relu", &["b"], "r", vec![]),
                node("GlobalAveragePool", &["r"], "g", vec![]),
                node("Flatten", &["g"], "f", vec![]),
                node(
                    "Gemm",
                    &["f", "wg", "cg"],
                    "y",
                    vec![int("transB", 1), float("alpha", 2.0), float("beta", 0.5)],
                ),
                node("MatMul", &["y", "wm"], "z", vec![]),
                node("Add", &["z", "bm"], "out", vec![]),
            ],
            initializer: vec![
                raw_tensor(
                    "pads",
                    &[8],
                    DataType::Int64,
                    pads.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                f32s("w", &[2, 1, 1, 1], &[1.0, -1.0]),
                f32s("s", &[1, 2, 1, 1], &[2.0, 3.0]),
                f32s("t", &[1, 2, 1, 1], &[1.0, -1.0]),
                f32s("gamma", &[2], &[1.0, 2.0]),
                f32s("beta", &[2], &[0.5, 0.0]),
                f32s("mean", &[2], &[1.0, 1.0]),
                f32s("var", &[2], &[3.0, 0.0]),
                f32s("wg", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                f32s("cg", &[3], &[1.0, 2.0, 3.0]),
                f32s("wm", &[3, 1], &[1.0, 2.0, 3.0]),
                f32s("bm", &[1], &[0.25]),
            ],
            output: vec![ValueInfoProto {
                name: "out".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn conv_affine_pad_and_dense_layers_by_hand() {
        let l = layers(&graph()).unwrap();
        assert_eq!(l.preamble, ["Pad"]);
        assert_eq!(l.convs.len(), 1);
        let c = &l.convs[0];
        assert_eq!((c.shape, c.group, c.stride), ([2, 1, 1, 1], 1, [2, 2]));
        assert_eq!(
            c.pads,
            ConvPads::Explicit {
                begin: [0, 0],
                end: [1, 1]
            }
        );
        assert_eq!(
            c.affine.len(),
            3,
            "Mul, Add, BatchNormalization: {:?}",
            c.affine
        );
        // scale: ·[2, 3], then BN a = γ/√(σ²+ε) = [1/2, 2/1] → [1, 6];
        // shift: [0, 0] + [1, −1] → a·(shift − μ) + β = [0.5·0 + 0.5, 2·(−2) + 0] = [0.5, −4].
        assert_eq!(c.scale_shift(), (vec![1.0, 6.0], vec![0.5, -4.0]));
        assert_eq!(l.dense.len(), 2);
        let (g, m) = (&l.dense[0], &l.dense[1]);
        // Gemm: transB → [in, out] = [[1, 3, 5], [2, 4, 6]], times α = 2; bias β·C.
        assert_eq!((g.inputs, g.outputs), (2, 3));
        assert_eq!(g.weight, [2.0, 6.0, 10.0, 4.0, 8.0, 12.0]);
        assert_eq!(g.bias, [0.5, 1.0, 1.5]);
        // MatMul + Add of a constant.
        assert_eq!(
            (m.inputs, m.outputs, m.bias.as_slice()),
            (3, 1, &[0.25][..])
        );
        assert_eq!(m.weight, [1.0, 2.0, 3.0]);
    }

    /// A chain stops where a tensor has a second reader (SiLU reads the conv output twice), and
    /// a computed weight is refused by node and tensor name (also behind an `Identity` that
    /// loops onto itself, which must not hang).
    #[test]
    fn affine_stops_at_a_shared_output_and_computed_weights_are_named() {
        let mut g = graph();
        g.node.insert(3, node("Sigmoid", &["m"], "sig", vec![]));
        let l = layers(&g).unwrap();
        assert_eq!(l.convs[0].affine, [Affine::Scale(vec![2.0, 3.0])]);

        let mut g = graph();
        g.node.insert(0, node("Identity", &["w"], "w", vec![]));
        g.initializer.retain(|t| t.name != "w");
        let e = layers(&g).unwrap_err().to_string();
        assert!(e.contains("'w' is computed by a Identity node"), "{e}");

        let mut g = graph();
        g.node
            .insert(0, node("Transpose", &["w_hwio"], "w", vec![]));
        g.initializer.retain(|t| t.name != "w");
        let e = layers(&g).unwrap_err().to_string();
        assert!(
            e.contains("Conv Conv_c") && e.contains("'w' is computed by a Transpose node"),
            "{e}"
        );
    }
}
