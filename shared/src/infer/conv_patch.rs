//! What fovea's ops that take the place of tract's `Conv` nodes ([`super::depthwise`],
//! [`super::dense_conv`]) share: [`replace_convs`], the patch that swaps each covered node for
//! the op (which reads the conv's input only, its weights held inside), and [`ConvParts`], the
//! node's constant kernel and bias and its input's shape, read once for both.
use tract_core::internal::*;
use tract_core::ops::cnn::{Conv, KernelFormat};
use tract_core::ops::nn::DataFormat;

/// A 2-D f32 `Conv` node with dilation 1, OIHW constant weights and a constant bias, on an
/// input of concrete shape.
pub struct ConvParts<'a> {
    /// NCHW (true) or CHW (false, batch 1: tract drops the axis of a batch-1 model while it
    /// declutters).
    pub batched: bool,
    /// The batch size (1 for CHW).
    pub n: usize,
    /// The input's `[C, H, W]`.
    pub chw: &'a [usize],
    /// The kernel, `[C_out, C_in / group, kh, kw]`.
    pub kernel: &'a Tensor,
    /// The bias: one value, or one per output channel.
    pub bias: &'a Tensor,
}

impl<'a> ConvParts<'a> {
    /// The parts of `conv` at `node`, if it is such a conv.
    pub fn of(model: &'a TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let batched = match spec.data_format {
            DataFormat::NCHW => true,
            DataFormat::CHW => false,
            _ => return Ok(None),
        };
        if conv.q_params.is_some()
            || conv.kernel_fmt != KernelFormat::OIHW
            || spec.rank() != 2
            || spec.dilations().iter().any(|&d| d != 1)
            || node.inputs.len() != 3
        {
            return Ok(None);
        }
        let x = model.outlet_fact(node.inputs[0])?;
        let (kernel, bias) = (
            model.outlet_fact(node.inputs[1])?,
            model.outlet_fact(node.inputs[2])?,
        );
        let (Some(shape), Some(kernel), Some(bias)) =
            (x.shape.as_concrete(), &kernel.konst, &bias.konst)
        else {
            return Ok(None);
        };
        if x.datum_type != f32::datum_type()
            || kernel.datum_type() != f32::datum_type()
            || bias.datum_type() != f32::datum_type()
            || shape.len() != 3 + batched as usize
        {
            return Ok(None);
        }
        let (n, chw) = if batched {
            (shape[0], &shape[1..])
        } else {
            (1, shape)
        };
        Ok(Some(ConvParts {
            batched,
            n,
            chw,
            kernel,
            bias,
        }))
    }

    /// The bias as one value per output channel (a single value repeated `c_out` times), if
    /// it has one or `c_out` values.
    pub fn bias_per_channel(&self, c_out: usize) -> TractResult<Option<Vec<f32>>> {
        Ok(match self.bias.try_as_plain_ram()?.as_slice::<f32>()? {
            [b] => Some(vec![*b; c_out]),
            b if b.len() == c_out => Some(b.to_vec()),
            _ => None,
        })
    }
}

/// Replaces every `Conv` node of `model` for which `covered` gives an op with that op, wired
/// to the conv's input alone; returns how many.
pub fn replace_convs<O: TypedOp>(
    model: &mut TypedModel,
    covered: impl Fn(&TypedModel, &TypedNode, &Conv) -> TractResult<Option<O>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    while let Some(patch) = first_covered(model, &covered)? {
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// The patch swapping the first `Conv` node of `model` (in evaluation order) for which
/// `covered` gives an op for that op, wired to the conv's input alone; `None` when no node is
/// covered.
pub fn first_covered<O: TypedOp>(
    model: &TypedModel,
    covered: impl Fn(&TypedModel, &TypedNode, &Conv) -> TractResult<Option<O>>,
) -> TractResult<Option<TypedModelPatch>> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        if let Some(op) = covered(model, node, conv)? {
            return TypedModelPatch::replace_single_op(model, node, &node.inputs[..1], op)
                .map(Some);
        }
    }
    Ok(None)
}
