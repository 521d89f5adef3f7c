//! Emitters: each burn layer of the EfficientNet as ONNX nodes (conv with folded BN, SiLU as
//! `Mul(x, Sigmoid(x))`, ReLU6 as `Clip(x, 0, 6)`, squeeze-excite, MBConv with its residual,
//! the classifier). Spatial sizes are tracked so every conv gets its exact pads: TF "SAME"
//! pads asymmetrically (more after) when the stride is 2, as burn's `PaddingConfig2d::Same`.
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;

use super::fold::{self, FoldedConv};
use super::graph::{GraphBuilder, attr_int, attr_ints};
use crate::model::arch::Activation;
use crate::model::net::EfficientNet;
use crate::model::net::conv_bn::ConvBn;
use crate::model::net::head::Classifier;
use crate::model::net::mbconv::MbConv;
use crate::model::net::squeeze_excite::SqueezeExcite;

/// A value in the graph with its static channel count and spatial size (`[N, c, h, w]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// ONNX value name.
    pub name: String,
    /// Channels.
    pub channels: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

/// ONNX pads `[top, left, bottom, right]` of a conv on an `h`×`w` input, as burn pads it.
pub fn pads(
    padding: &PaddingConfig2d,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
) -> [usize; 4] {
    // TF "SAME" on one axis: output ceil(in / s), total max((out − 1)·s + k − in, 0), the
    // odd remainder after.
    let same = |size: usize, k: usize, s: usize| {
        let out = size.div_ceil(s);
        let total = ((out - 1) * s + k).saturating_sub(size);
        (total / 2, total - total / 2)
    };
    match *padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, left, bottom, right],
        PaddingConfig2d::Same => {
            let (top, bottom) = same(h, k[0], s[0]);
            let (left, right) = same(w, k[1], s[1]);
            [top, left, bottom, right]
        }
    }
}

/// A `Conv` node with `params` (initializers `{name}.weight`, `{name}.bias`).
pub fn conv(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    conv: &Conv2d,
    params: FoldedConv,
) -> Value {
    let [out, _, kh, kw] = params.dims;
    let [sh, sw] = conv.stride;
    let p = pads(&conv.padding, x.h, x.w, [kh, kw], [sh, sw]);
    let weight = g.initializer(&format!("{name}.weight"), &params.dims, &params.weight);
    let bias = g.initializer(&format!("{name}.bias"), &[out], &params.bias);
    let y = g.node(
        "Conv",
        name,
        &[&x.name, &weight, &bias],
        vec![
            attr_ints("kernel_shape", &[kh as i64, kw as i64]),
            attr_ints("strides", &[sh as i64, sw as i64]),
            attr_ints(
                "dilations",
                &[conv.dilation[0] as i64, conv.dilation[1] as i64],
            ),
            attr_ints("pads", &p.map(|v| v as i64)),
            attr_int("group", conv.groups as i64),
        ],
    );
    Value {
        name: y,
        channels: out,
        h: (x.h + p[0] + p[2] - kh) / sh + 1,
        w: (x.w + p[1] + p[3] - kw) / sw + 1,
    }
}

/// The nonlinearity on `x`; the result is named `{name}` (intermediates get suffixes).
pub fn activation(g: &mut GraphBuilder, name: &str, x: &Value, act: Activation) -> Value {
    let y = match act {
        Activation::Silu => {
            let s = g.node("Sigmoid", &format!("{name}.sigmoid"), &[&x.name], vec![]);
            g.node("Mul", name, &[&x.name, &s], vec![])
        }
        Activation::Relu6 => {
            let lo = g.scalar("const.zero", 0.0);
            let hi = g.scalar("const.six", 6.0);
            g.node("Clip", name, &[&x.name, &lo, &hi], vec![])
        }
    };
    Value {
        name: y,
        ..x.clone()
    }
}

/// Conv with its BatchNorm folded in, then the unit's activation, if any. The last node's
/// output is `{name}.act` (or `{name}` without activation) unless `out_name` overrides it.
pub fn conv_bn(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    unit: &ConvBn,
    out_name: Option<&str>,
) -> anyhow::Result<Value> {
    let params = fold::fold(&unit.conv, &unit.bn)?;
    let conv_name = match (unit.activation, out_name) {
        (None, Some(n)) => n.to_owned(),
        _ => format!("{name}.conv"),
    };
    let y = conv(g, &conv_name, x, &unit.conv, params);
    Ok(match unit.activation {
        Some(act) => {
            let act_name = out_name.map_or_else(|| format!("{name}.act"), str::to_owned);
            activation(g, &act_name, &y, act)
        }
        None => y,
    })
}

/// `x · Sigmoid(expand(act(reduce(GlobalAveragePool(x)))))`.
pub fn squeeze_excite(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    se: &SqueezeExcite,
) -> anyhow::Result<Value> {
    let pooled = g.node(
        "GlobalAveragePool",
        &format!("{name}.pool"),
        &[&x.name],
        vec![],
    );
    let pooled = Value {
        name: pooled,
        channels: x.channels,
        h: 1,
        w: 1,
    };
    let r = conv(
        g,
        &format!("{name}.reduce"),
        &pooled,
        &se.reduce,
        fold::plain(&se.reduce)?,
    );
    let r = activation(g, &format!("{name}.reduce.act"), &r, se.activation);
    let e = conv(
        g,
        &format!("{name}.expand"),
        &r,
        &se.expand,
        fold::plain(&se.expand)?,
    );
    let gate = g.node("Sigmoid", &format!("{name}.gate"), &[&e.name], vec![]);
    let y = g.node("Mul", &format!("{name}.out"), &[&x.name, &gate], vec![]);
    Ok(Value {
        name: y,
        ..x.clone()
    })
}

/// One `ds` / `ir` block; drop-connect is absent at inference, the residual is an `Add`.
pub fn mbconv(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    block: &MbConv,
) -> anyhow::Result<Value> {
    let mut h = x.clone();
    if let Some(expand) = &block.expand {
        h = conv_bn(g, &format!("{name}.expand"), &h, expand, None)?;
    }
    h = conv_bn(g, &format!("{name}.depthwise"), &h, &block.depthwise, None)?;
    if let Some(se) = &block.se {
        h = squeeze_excite(g, &format!("{name}.se"), &h, se)?;
    }
    h = conv_bn(g, &format!("{name}.project"), &h, &block.project, None)?;
    if !block.residual {
        return Ok(h);
    }
    let y = g.node(
        "Add",
        &format!("{name}.residual"),
        &[&h.name, &x.name],
        vec![],
    );
    Ok(Value { name: y, ..h })
}

/// Stem, blocks and head conv; the feature map is named `features_name`.
pub fn backbone(
    g: &mut GraphBuilder,
    input: &Value,
    net: &EfficientNet,
    features_name: &str,
) -> anyhow::Result<Value> {
    let mut x = conv_bn(g, "stem", input, &net.stem, None)?;
    for (i, block) in net.blocks.iter().enumerate() {
        x = mbconv(g, &format!("blocks.{i}"), &x, block)?;
    }
    conv_bn(g, "head_conv", &x, &net.head_conv, Some(features_name))
}

/// `Gemm(x, W, b)` named `out`, initializers `{name}.weight` (burn's `[in, out]` layout, so
/// no transpose) and `{name}.bias`.
fn dense(
    g: &mut GraphBuilder,
    name: &str,
    out: &str,
    x: &str,
    layer: &burn::nn::Linear,
) -> anyhow::Result<String> {
    let [i, o] = layer.weight.dims();
    let w = fold::values(layer.weight.val())?;
    let b = match &layer.bias {
        Some(b) => fold::values(b.val())?,
        None => vec![0.0; o],
    };
    let w = g.initializer(&format!("{name}.weight"), &[i, o], &w);
    let b = g.initializer(&format!("{name}.bias"), &[o], &b);
    Ok(g.node("Gemm", out, &[x, &w, &b], vec![]))
}

/// GlobalAveragePool → Flatten → (Gemm → Relu) → Gemm named `logits_name`. Dropout is
/// absent: it is the identity at inference.
pub fn classifier(
    g: &mut GraphBuilder,
    features: &Value,
    head: &Classifier,
    logits_name: &str,
) -> anyhow::Result<String> {
    let pooled = g.node(
        "GlobalAveragePool",
        "classifier.pool",
        &[&features.name],
        vec![],
    );
    let mut x = g.node(
        "Flatten",
        "classifier.flatten",
        &[&pooled],
        vec![attr_int("axis", 1)],
    );
    if let Some(hidden) = &head.hidden {
        let h = dense(g, "classifier.hidden", "classifier.hidden", &x, hidden)?;
        x = g.node("Relu", "classifier.hidden.relu", &[&h], vec![]);
    }
    dense(g, "classifier.output", logits_name, &x, &head.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_follow_burn() {
        // 3×3 stride 2 on 224: TF pads only after; on 17 both sides.
        assert_eq!(
            pads(&PaddingConfig2d::Same, 224, 17, [3, 3], [2, 2]),
            [0, 1, 1, 1]
        );
        // 5×5 stride 2 on 28: 1 before, 2 after.
        assert_eq!(
            pads(&PaddingConfig2d::Same, 28, 28, [5, 5], [2, 2]),
            [1, 1, 2, 2]
        );
        assert_eq!(
            pads(&PaddingConfig2d::Same, 15, 15, [5, 5], [1, 1]),
            [2, 2, 2, 2]
        );
        assert_eq!(
            pads(&PaddingConfig2d::Explicit(1, 2, 3, 4), 9, 9, [3, 3], [1, 1]),
            [1, 2, 3, 4]
        );
    }
}
