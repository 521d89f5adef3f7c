//! The device process's heap policy: one for loading a model, one for running it.
//!
//! A load holds the ONNX message's weights (decoded, the int8 forms dequantized to f32) until
//! tract has copied them, and tract's optimization allocates and frees its own temporaries.
//! Under glibc's default policy (buffers below the mmap threshold — 128 KiB at first, raised
//! by its dynamic rule as large blocks are freed — come from the heap, where freed memory stays
//! resident) inference then allocated around the load's holes, and `edge screen`'s peak RSS
//! with a B0 bundle read 59–65 MiB against issue 7's 64 MiB bound.
//!
//! - While a model loads ([`loading`]): buffers of 512 KiB and more get their own mappings,
//!   which go back to the kernel when freed.
//! - After: large buffers stay in the heap (the mmap and trim thresholds at their maximum, as
//!   the host's `heap.rs`), so each inference reuses the previous one's tensors instead of
//!   mapping and faulting fresh pages.
//!
//! Measured (`/usr/bin/time -f %M edge screen` of DRIVE_22 with a B0 int8 bundle; `edge bench`
//! of its `weights` form for the load; binaries alternated, four rounds, docs/PERFORMANCE.md):
//! peak RSS 61.4–62.9 → 57.4–57.8 MiB (with the banded stem of `dense_conv.rs`; 57.7–58.7
//! after the dequantization change of `shared::onnx::dequant`); load + optimize 227–253 →
//! 270–310 ms on a loaded machine (the same binary loaded in 170–242 ms minutes before; page
//! faults and page zeroing were ~12 % of a load in `perf`).
//! A 256 KiB threshold: 55.7–57.4 MiB, 284–319 ms; 1 MiB: no lower RSS; mapping only until
//! tract has copied the weights: 65.6–68.0 MiB (tract's optimization temporaries are what
//! stays). Inference unchanged (`edge bench` medians within noise). Only on glibc targets (the
//! boards run glibc Linux); elsewhere the allocator's own policy applies.

/// Runs `load` with large buffers in their own mappings, then keeps large buffers in the heap.
pub fn loading<T>(load: impl FnOnce() -> T) -> T {
    set(512 * 1024);
    let loaded = load();
    set(i32::MAX);
    loaded
}

/// Sets glibc's mmap threshold to `mmap_threshold` and its trim threshold to its maximum;
/// returns whether glibc accepted both.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(mmap_threshold: i32) -> bool {
    // SAFETY: mallopt changes malloc parameters and takes no pointers; glibc serialises it
    // against allocations on other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
    }
}

/// Not glibc: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_mmap_threshold: i32) -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc accepts both phases' thresholds (mallopt returns 0 for a value it refuses: then
    /// the policy would be void and this fails). The policy stays in force for the other tests
    /// of this process, which is the device's own state after a load.
    #[test]
    fn glibc_accepts_both_phases() {
        assert!(super::set(512 * 1024));
        assert!(super::set(i32::MAX));
    }
}
