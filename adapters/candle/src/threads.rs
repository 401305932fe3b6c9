//! Keeping each executor to its intra-op thread budget.
//!
//! # Where candle 0.11's CPU backend gets its threads
//! Read from the candle-core 0.11.1 and gemm-common 0.19 sources:
//!
//! - **Matrix products** (`matmul`, `Linear`, and the inner product of every
//!   convolution) call `gemm` with `Parallelism::Rayon(n)`, where
//!   `n = candle_core::utils::get_num_threads()`: `RAYON_NUM_THREADS`, else the number of
//!   *physical* cores, read again on every call. gemm cuts the product into `n` tasks
//!   with `into_par_iter` on the **current** rayon pool (products below gemm's size
//!   threshold stay on one thread; `n == 1` turns gemm's threading off altogether). So
//!   `n` sets how finely the work is split, and the pool the call runs in sets how many
//!   threads execute it.
//! - **Convolutions**: `conv2d` (tiled im2col for k > 1, one product per sample for
//!   1x1) and `conv1d` (im2col, then one product) use `into_par_iter` over samples and
//!   tiles, again on the current rayon pool.
//! - **Element-wise ops** (`relu`, `+`, `broadcast_add`, ...) on 64 Ki elements or more
//!   do *not* use rayon: they go to candle's own process-wide "barrier pool"
//!   (`candle_core::utils::barrier_pool`), `CANDLE_NUM_THREADS - 1` spinning worker
//!   threads (default: physical cores - 1) behind one mutex. A rayon pool cannot limit
//!   them, two executors would queue for that mutex, and its workers spin for a while
//!   after every op, on cores the benchmark gives to someone else.
//! - candle's private rayon pool (`Device::with_context`) and rayon's global pool are
//!   used only by callers that ask for them; this adapter never does.
//!
//! # What this adapter does
//! - Every forward pass runs inside [`rayon::ThreadPool::install`] on a pool of exactly
//!   `intra_threads` threads owned by the executor ([`intra_op_pool`]). Every rayon task
//!   candle and gemm spawn lands there, so at most `intra_threads` threads compute.
//! - Before the first engine is built, [`quiet_barrier_pool`] sets
//!   `CANDLE_NUM_THREADS=1` (unless the user set it) and creates the barrier pool: it
//!   then has no workers and runs every element-wise op inline, on the calling thread,
//!   which is one of the executor's pool threads. Element-wise ops are therefore
//!   single-threaded per executor; convolutions and products use the whole budget.
//!   The number of barrier-pool workers actually in effect goes into `describe()`.
//! - gemm's split count stays candle's choice (physical cores, or `RAYON_NUM_THREADS`):
//!   it is process-wide and read per call, so it cannot follow each executor's budget.
//!   With a budget below it, the extra tasks queue on the pool's threads; with a
//!   budget above it, a single product uses at most that many threads (convolutions
//!   still spread tiles over the whole pool). It is reported in `describe()` too.
//!
//! `tests/threads.rs` checks all of this from the outside: it reads per-thread CPU time
//! from `/proc` and asserts that only the executor's pool threads compute.

use std::sync::Once;

use contract::BackendError;

/// Environment variable that sizes candle's element-wise barrier pool.
pub const CANDLE_NUM_THREADS: &str = "CANDLE_NUM_THREADS";

/// A rayon pool of exactly `threads` threads named `candle-<executor>-t<j>`, in which
/// one executor runs all its forward passes.
pub fn intra_op_pool(executor: usize, threads: usize) -> Result<rayon::ThreadPool, BackendError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |j| format!("candle-{executor}-t{j}"))
        .build()
        .map_err(|e| {
            BackendError::Engine(format!(
                "cannot start {threads} intra-op threads for executor {executor}: {e}"
            ))
        })
}

/// Makes candle's element-wise ops run on the thread that calls them, and returns the
/// number of barrier-pool worker threads in effect (0 unless the user set
/// `CANDLE_NUM_THREADS` above 1, or candle ran an element-wise op in this process before
/// the first [`crate::open`]).
///
/// The environment is written at most once per process, before any executor thread of
/// this adapter exists.
pub fn quiet_barrier_pool() -> usize {
    static SET: Once = Once::new();
    SET.call_once(|| {
        if std::env::var_os(CANDLE_NUM_THREADS).is_none() {
            std::env::set_var(CANDLE_NUM_THREADS, "1");
        }
    });
    candle_core::utils::barrier_pool().n_workers()
}

/// How many tasks gemm splits a large product into (see the module docs).
pub fn gemm_split() -> usize {
    candle_core::utils::get_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_has_the_requested_size_and_names() {
        let pool = intra_op_pool(3, 2).unwrap();
        assert_eq!(pool.current_num_threads(), 2);
        let name = pool.install(|| std::thread::current().name().map(str::to_string));
        assert!(name.unwrap().starts_with("candle-3-t"));
        assert_eq!(intra_op_pool(0, 0).unwrap().current_num_threads(), 1);
    }

    #[test]
    fn barrier_pool_has_no_workers() {
        if std::env::var_os(CANDLE_NUM_THREADS).is_none() {
            assert_eq!(quiet_barrier_pool(), 0);
        }
    }
}
