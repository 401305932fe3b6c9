//! libtorch's thread settings.
//!
//! libtorch's CPU kernels run on an OpenMP team whose size is `at::set_num_threads`:
//! it stores a process-wide value and sets the calling thread's OpenMP limit; other
//! threads pick the stored value up before their first parallel region. Every
//! executor therefore calls [`configure`] on its own thread, before it builds its
//! models, with the same `intra_threads` (the harness gives every executor the same
//! budget, so the process-wide value is right for all of them).
//!
//! The inter-op pool (used by `torch.jit` forks, not by eager `nn` forwards) is set to
//! one thread, once per process: libtorch refuses a second setting.

use std::sync::Once;

/// Sets libtorch's intra-op threads for the calling executor thread (and the process)
/// to `intra_threads`, and inter-op threads to 1; returns the intra-op and inter-op
/// thread counts libtorch then reports.
pub fn configure(intra_threads: usize) -> (usize, usize) {
    static INTEROP: Once = Once::new();
    INTEROP.call_once(|| {
        if tch::get_num_interop_threads() != 1 {
            // libtorch throws (and tch panics) if the inter-op pool is already running;
            // then the count in effect is what gets reported.
            let _ = std::panic::catch_unwind(|| tch::set_num_interop_threads(1));
        }
    });
    let n = i32::try_from(intra_threads.max(1)).unwrap_or(i32::MAX);
    tch::set_num_threads(n);
    let count = |v: i32| usize::try_from(v).unwrap_or(0);
    (
        count(tch::get_num_threads()),
        count(tch::get_num_interop_threads()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_intra_and_inter_op_threads() {
        assert_eq!(configure(1), (1, 1));
        let on_another_thread = std::thread::spawn(|| configure(2)).join().unwrap();
        assert_eq!(on_another_thread, (2, 1));
    }
}
