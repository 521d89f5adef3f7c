//! One inference with the thread pool's other workers kept looking for work until it ends, as
//! onnxruntime's intra-op pool spins between ops by default: rayon puts an idle worker to sleep
//! after a short search, and B0's ~290 plan nodes alternate between serial ones (tract's
//! element-wise ops, squeeze-excitation's small products) and ones that split over the pool, so
//! without this each split first wakes the other worker through the OS and waits for it to be
//! scheduled.
//!
//! How: [`run`] runs the inference on the pool and spawns one job per other worker that, until
//! the inference is over, calls [`rayon::yield_now`] in a loop — taking and running any piece
//! of work the inference's splits leave in the pool — instead of sleeping. A spinner popped by
//! the worker running the inference itself (while it waits for a split's other half) hands
//! itself back to the pool rather than hold that worker: the inference could not go on under
//! it. The cost is what onnxruntime pays: the other cores busy for the length of a run, idle
//! between runs.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::{ThreadPool, Yield};

/// Runs `f` on `pool` with the pool's other workers spinning until `f` returns (see the module
/// doc).
pub fn run<R: Send>(pool: &ThreadPool, f: impl FnOnce() -> R + Send) -> R {
    pool.install(|| {
        let done = Done(Arc::new(AtomicBool::new(false)));
        let home = rayon::current_thread_index();
        for _ in 1..rayon::current_num_threads() {
            spawn(done.0.clone(), home);
        }
        f()
    })
}

/// Sets the flag the spinners watch when the run ends, panicking or not.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Puts one spinner for the run `done` belongs to in the current worker's queue.
fn spawn(done: Arc<AtomicBool>, home: Option<usize>) {
    rayon::spawn(move || spin(done, home));
}

/// Runs the pool's pending work until `done`; on the inference's own worker (`home`), puts
/// itself back in the pool instead.
fn spin(done: Arc<AtomicBool>, home: Option<usize>) {
    if rayon::current_thread_index() == home {
        if !done.load(Ordering::Acquire) {
            spawn(done, home);
        }
        return;
    }
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(Yield::Executed) => {}
            // Nothing pending: let the OS run anything else that wants this core.
            Some(Yield::Idle) => std::thread::yield_now(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rayon::prelude::*;

    use super::*;

    fn pool(n: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    /// CPU seconds the calling thread has used.
    fn thread_cpu() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to write.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "clock_gettime");
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }

    /// Each worker's CPU seconds while the calling thread sleeps `wait`.
    fn cpu_over(pool: &ThreadPool, wait: Duration) -> Vec<f64> {
        let before = pool.broadcast(|_| thread_cpu());
        std::thread::sleep(wait);
        let after = pool.broadcast(|_| thread_cpu());
        after.iter().zip(&before).map(|(a, b)| a - b).collect()
    }

    #[test]
    fn runs_nested_splits_to_the_same_values() {
        let pool = pool(2);
        let v: Vec<u64> = (0..20_000).collect();
        let want: u64 = v.iter().map(|x| x * x % 7).sum();
        for _ in 0..200 {
            // Splits nested in splits, as an inference's ops split inside the run: the
            // spinner is taken by the other worker or, while it waits, by the run's own one.
            let got = run(&pool, || {
                let (a, b) = rayon::join(
                    || v[..7_000].par_iter().map(|x| x * x % 7).sum::<u64>(),
                    || v[7_000..].par_iter().map(|x| x * x % 7).sum::<u64>(),
                );
                a + b
            });
            assert_eq!(got, want);
        }
    }

    #[test]
    fn workers_stop_spinning_when_the_run_ends() {
        let pool = pool(2);
        let idle = Duration::from_millis(300);
        // While a run is on, the other worker spins: this is what the test below would see if
        // the spinners outlived their run.
        let during = run(&pool, || {
            let me = rayon::current_thread_index().unwrap();
            cpu_over(&pool, idle)[1 - me]
        });
        assert!(
            during > 0.25 * idle.as_secs_f64(),
            "spinner used {during} s"
        );
        // After a run that returned and after one that panicked, both workers idle.
        for panics in [false, true] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&pool, || {
                    let s: u64 = (0..10_000u64).into_par_iter().sum();
                    assert!(!panics, "the run's panic");
                    s
                })
            }));
            assert_eq!(r.is_err(), panics);
            std::thread::sleep(Duration::from_millis(20));
            let cpu = cpu_over(&pool, idle);
            assert!(
                cpu.iter().all(|&c| c < 0.2 * idle.as_secs_f64()),
                "after the run (panicked: {panics}) the workers used {cpu:?} s"
            );
        }
    }
}
