//! A layer's output rows in one run of consecutive rows per thread: how
//! `depthwise::ChannelsLast` and the depthwise plane path (one image at stride 1) split planes of
//! 196 pixels and more over rayon's threads and how fovea's banded ops split theirs over tract's
//! executor (`infer::row_runs`). One definition, so that the ops split a layer's rows alike.
use rayon::prelude::*;

/// `0 .. rows` as runs of `⌈rows / threads⌉` consecutive rows (the last one shorter where that
/// does not divide `rows`): at most `threads` runs `(start, end)`, disjoint, in order, together
/// covering `0 .. rows`, as a parallel iterator. No runs for no rows.
pub(crate) fn runs(
    rows: usize,
    threads: usize,
) -> impl IndexedParallelIterator<Item = (usize, usize)> {
    let per = rows.div_ceil(threads.max(1)).max(1);
    (0..rows.div_ceil(per))
        .into_par_iter()
        .map(move |t| (t * per, ((t + 1) * per).min(rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(rows: usize, threads: usize) -> Vec<(usize, usize)> {
        runs(rows, threads).collect()
    }

    /// By hand: 16 rows on 3 threads in runs of ⌈16/3⌉ = 6 (the last 4); 14 on 2 in two of 7;
    /// 5 on 8 in five of 1 (fewer runs than threads); 7 on 1 (and on "0") in one; none for 0.
    #[test]
    fn runs_by_hand() {
        assert_eq!(all(16, 3), [(0, 6), (6, 12), (12, 16)]);
        assert_eq!(all(14, 2), [(0, 7), (7, 14)]);
        assert_eq!(all(5, 8), [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
        assert_eq!(all(7, 1), [(0, 7)]);
        assert_eq!(all(7, 0), [(0, 7)]);
        assert_eq!(all(0, 2), []);
    }
}
