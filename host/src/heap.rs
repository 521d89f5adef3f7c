//! The heap policy of the host process: large freed buffers stay in the heap for the next
//! training step instead of going back to the kernel.
//!
//! A training step allocates and frees activation-sized buffers (B0 at 224 px, batch 16: up to
//! 77 MB each, hundreds per step). glibc serves every allocation above its mmap threshold
//! (at most 32 MiB by its dynamic rule) with a fresh `mmap` and returns it with `munmap` on
//! free, so each step page-faults and zeroes all of that memory again — measured at ~15 % of a
//! B0 step in `perf` (`clear_page_erms`, page faults) and 8.7 → 11.1 img/s when the threshold
//! was raised through `GLIBC_TUNABLES` (docs/PERFORMANCE.md). The peak RSS did not grow
//! (the same buffers are reused). This sets the same thresholds with `mallopt` at start-up.
//!
//! Only on glibc targets; elsewhere the allocator's own policy applies.

/// Raise glibc's mmap and trim thresholds to 2 GiB − 1. Returns whether glibc accepted both.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_buffers() -> bool {
    const LIMIT: libc::c_int = libc::c_int::MAX;
    // SAFETY: mallopt only changes two malloc parameters; it is called first thing in main,
    // before any other thread exists, and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT) == 1
    }
}

/// Not glibc: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_buffers() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc accepts the thresholds (mallopt returns 0 for a value it refuses, e.g. above its
    /// 32 MiB `M_MMAP_THRESHOLD` cap in some versions: then this fails and the policy is void).
    #[test]
    fn glibc_accepts_the_thresholds() {
        assert!(super::keep_large_buffers());
    }
}
