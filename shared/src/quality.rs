//! Image quality gate: is this photograph gradable at all?
