//! Where an inference's time goes: every node of the plan `edge` runs (the same loader, with
//! fovea's depthwise and 1×1 ops in place) timed on its own, summed by operator.
//!
//!   cargo run --release -p fovea-edge --example node_profile MODEL.onnx [RUNS] [SIDE] [THREADS] [TOP]
//!
//! Batch 1, a constant input, THREADS threads (default 1) as `edge --threads`, the pool's other
//! workers spinning through each run as `edge`'s do (`src/runtime/spin.rs`). Prints per
//! operator the median over RUNS (default 50) of its time per inference and its share of the
//! median inference, then the TOP (default 15) slowest nodes with what each op says of itself
//! (tract's products: the kernel they picked). The per-node times add the plan's own
//! bookkeeping between nodes to nothing, so the shares sum to a little under 100 %.
//!
//! `WARM=OP` (an operator's name, e.g. `FoveaDepthwise`) runs each node of that operator once
//! untimed before its timed run, so its input and weights are in cache: the difference is
//! what the operator pays for reading what the node before it left.
use std::collections::BTreeMap;
use std::time::Instant;

use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::prelude::*;

// The loader only; its run helpers go unused here.
#[path = "../src/runtime/heap.rs"]
mod heap;
#[allow(dead_code)]
#[path = "../src/runtime/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../src/runtime/spin.rs"]
mod spin;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or_else(|| {
        anyhow::anyhow!("usage: node_profile MODEL.onnx [RUNS] [SIDE] [THREADS] [TOP]")
    })?;
    let runs: usize = args.next().map_or(Ok(50), |r| r.parse())?;
    let side: usize = args.next().map_or(Ok(224), |r| r.parse())?;
    let threads: usize = args.next().map_or(Ok(1), |r| r.parse())?;
    let top: usize = args.next().map_or(Ok(15), |r| r.parse())?;
    let warm = std::env::var("WARM").ok();
    // As `edge --threads N`: the executor set before the load, each run on its pool.
    model::set_threads(threads)?;
    let bytes = std::fs::read(&path)?;
    let plan = model::load_onnx(&bytes, side)?;
    let model = plan.model();
    let input = Tensor::from(tract_ndarray::Array4::<f32>::from_elem(
        (1, 3, side, side),
        0.25,
    ));

    // node id → time of each run, µs; whole runs, µs.
    let mut per_node: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let mut sums = Vec::new();
    let mut state = plan.spawn()?;
    for run in 0..runs + 3 {
        let mut this_run: BTreeMap<usize, f64> = BTreeMap::new();
        let start = Instant::now();
        let mut one_run = || {
            state.run_plan_with_eval(
                tvec!(input.clone().into()),
                |ctx, op_state, node, inputs| {
                    let mut op_state = op_state;
                    if warm.as_deref() == Some(&*node.op().name()) {
                        let again = inputs.clone();
                        let _ = tract_core::plan::eval(ctx, op_state.as_deref_mut(), node, again);
                    }
                    let t = Instant::now();
                    let out = tract_core::plan::eval(ctx, op_state, node, inputs);
                    *this_run.entry(node.id).or_default() += t.elapsed().as_secs_f64() * 1e6;
                    out
                },
            )
        };
        match current_tract_executor() {
            // As `edge` runs an inference: the pool's other workers spinning meanwhile.
            Executor::MultiThread(pool) => spin::run(&pool, one_run)?,
            _ => one_run()?,
        };
        // The first runs warm caches and allocations.
        if run >= 3 {
            totals.push(start.elapsed().as_secs_f64() * 1e6);
            sums.push(this_run.values().sum::<f64>());
            for (id, us) in this_run {
                per_node.entry(id).or_default().push(us);
            }
        }
    }
    let total = median(totals);
    let sum = median(sums);
    let mut by_op: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut nodes = Vec::new();
    for (id, times) in per_node {
        let node = model.node(id);
        let us = median(times);
        let entry = by_op.entry(node.op().name().to_string()).or_default();
        entry.0 += 1;
        entry.1 += us;
        nodes.push((us, id));
    }
    println!(
        "{path} at {side} px, {threads} thread(s), median inference {:.2} ms (its nodes' own times: {:.2} ms)\n",
        total / 1e3,
        sum / 1e3
    );
    println!("| operator | nodes | ms | share |");
    println!("|---|---|---|---|");
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    for (op, (count, us)) in ops {
        println!(
            "| {op} | {count} | {:.3} | {:.1} % |",
            us / 1e3,
            100.0 * us / total
        );
    }
    nodes.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("\nslowest nodes:");
    for (us, id) in nodes.iter().take(top) {
        let node = model.node(*id);
        let shape = &model.outlet_fact(OutletId::new(*id, 0))?.shape;
        println!(
            "  {us:8.1} µs  {} ({}) → {shape:?}",
            node.name,
            node.op().name()
        );
        // What the op says of itself: tract's products name the kernel they picked.
        for line in node.op().info()? {
            println!("              {line}");
        }
    }
    Ok(())
}
