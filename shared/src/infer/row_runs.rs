//! How the banded ops (`expand_depthwise`, `stem_depthwise`) spread their output rows over
//! tract's executor: one run of consecutive rows per thread of its pool (the whole image under
//! the single-thread executor), so that each thread carries the rows its bands share itself and
//! recomputes only those at the start of its run (`crate::thread_rows`, the split
//! `depthwise::ChannelsLast` makes too).
use rayon::prelude::*;
use tract_core::internal::*;
use tract_linalg::multithread::{Executor, current_tract_executor};

use crate::thread_rows;

/// Runs `rows((start, end))` on runs of the output rows `0 .. oh`, one per thread of tract's
/// executor, on that executor's threads; the runs are disjoint and together cover `0 .. oh`.
/// The first error is returned.
pub(super) fn over_runs(
    oh: usize,
    rows: impl Fn((usize, usize)) -> TractResult<()> + Sync,
) -> TractResult<()> {
    let runs = |threads: usize| thread_rows::runs(oh, threads).try_for_each(&rows);
    match current_tract_executor() {
        Executor::SingleThread => rows((0, oh)),
        Executor::MultiThread(pool) => pool.install(|| runs(pool.current_num_threads())),
        _ => runs(rayon::current_num_threads()),
    }
}
