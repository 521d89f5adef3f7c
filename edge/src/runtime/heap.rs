//! The device process's heap policy: one for loading a model, one for running it.
//!
//! A load holds the ONNX message's weights (decoded, the int8 forms dequantized to f32) until
//! tract has copied them, and tract's optimization allocates and frees its own temporaries.
//! Under glibc's default policy (buffers below the mmap threshold — 128 KiB at first, raised
//! by its dynamic rule as large blocks are freed — come from the heap, where freed memory stays
//! resident) inference then allocated around the load's holes, and `edge screen`'s peak RSS
//! with a B0 bundle sat at 60–64 MiB against issue 7's 64 MiB bound.
//!
//! - While a model loads ([`loading`]): buffers of 256 KiB and more get their own mappings,
//!   which go back to the kernel when freed.
//! - After: large buffers stay in the heap (the mmap and trim thresholds at their maximum, as
//!   the host's `heap.rs`), so each inference reuses the previous one's tensors instead of
//!   mapping and faulting fresh pages.
//!
//! Measured (`/usr/bin/time -f %M edge screen` of DRIVE_22 with a B0 int8 bundle, binaries
//! alternated, docs/PERFORMANCE.md): peak RSS 60.1–64.8 → 58.0–60.2 MiB (seven runs each);
//! a 64 KiB threshold went lower (56–57.5) but loaded B0 in 230–283 ms; 1 MiB kept 61–64 MiB.
//! The price is the load: B0's `weights` form 170–242 → 229–315 ms (the mappings' page
//! faults; eight runs each on a noisy machine, one above issue 7's 300 ms). Inference unchanged (`edge bench` medians within noise).
//! Only on glibc targets (the boards run glibc Linux); elsewhere the allocator's own policy
//! applies.

/// Runs `load` with large buffers in their own mappings, then keeps large buffers in the heap.
pub fn loading<T>(load: impl FnOnce() -> T) -> T {
    set(256 * 1024);
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
        assert!(super::set(256 * 1024));
        assert!(super::set(i32::MAX));
    }
}
