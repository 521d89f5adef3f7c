//! An ONNX graph under construction: nodes in topological order, f32 initializers, the
//! graph's inputs and outputs, all as `tract_onnx::pb` (prost) messages.
use std::collections::BTreeSet;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto::{self, Tensor as TensorType};
use tract_onnx::pb::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// One dimension of a graph input or output: fixed, or a named symbol (the batch, `N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size, by name.
    Symbol(&'static str),
}

/// Nodes and initializers added in order; every value name is unique.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    names: BTreeSet<String>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn claim(&mut self, name: &str) {
        // Names come from the model's fixed module paths; a clash is a bug in the emitters.
        assert!(
            self.names.insert(name.to_owned()),
            "duplicate ONNX name {name}"
        );
    }

    /// Adds an f32 initializer of shape `dims` (row-major `data`), returns its name.
    pub fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            data.len(),
            "initializer {name}: shape {dims:?} vs {} values",
            data.len()
        );
        self.claim(name);
        self.initializers.push(TensorProto {
            name: name.to_owned(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_owned()
    }

    /// A scalar f32 initializer shared by every node that needs the value (Clip's bounds).
    pub fn scalar(&mut self, name: &str, value: f32) -> String {
        if !self.names.contains(name) {
            self.initializer(name, &[], &[value]);
        }
        name.to_owned()
    }

    /// Adds a node `op_type(inputs) → output` named after its output; returns the output name.
    pub fn node(
        &mut self,
        op_type: &str,
        output: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.claim(output);
        self.nodes.push(NodeProto {
            name: output.to_owned(),
            op_type: op_type.to_owned(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            attribute: attributes,
            ..Default::default()
        });
        output.to_owned()
    }

    /// Declares a graph input of f32 values.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.claim(name);
        self.inputs.push(value_info(name, dims));
        name.to_owned()
    }

    /// Declares an existing value as a graph output of f32 values.
    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        assert!(self.names.contains(name), "output {name} is not a value");
        self.outputs.push(value_info(name, dims));
    }

    /// The finished graph.
    pub fn finish(self, name: &str) -> GraphProto {
        GraphProto {
            name: name.to_owned(),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
    }
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbol(s) => dimension::Value::DimParam((*s).to_owned()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(TensorType {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// An `INTS` attribute.
pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initializers_are_little_endian_f32_and_names_unique() {
        let mut g = GraphBuilder::new();
        let x = g.input("input", &[Dim::Symbol("N"), Dim::Fixed(2)]);
        let w = g.initializer("w", &[2], &[1.0, -2.5]);
        assert_eq!(g.scalar("zero", 0.0), g.scalar("zero", 0.0));
        let y = g.node("Mul", "y", &[&x, &w], vec![]);
        g.output(&y, &[Dim::Symbol("N"), Dim::Fixed(2)]);
        let graph = g.finish("t");
        assert_eq!(graph.initializer.len(), 2);
        let raw = &graph.initializer[0].raw_data;
        assert_eq!(raw[..4], 1.0f32.to_le_bytes());
        assert_eq!(raw[4..], (-2.5f32).to_le_bytes());
        assert_eq!(graph.initializer[1].dims, Vec::<i64>::new());
        assert_eq!(graph.node[0].input, ["input", "w"]);
        assert_eq!(graph.output[0].name, "y");
    }

    #[test]
    #[should_panic(expected = "duplicate ONNX name")]
    fn a_duplicate_name_is_a_bug() {
        let mut g = GraphBuilder::new();
        g.initializer("w", &[1], &[1.0]);
        g.initializer("w", &[1], &[2.0]);
    }
}
