//! The allocator the `harness` binary (and the benches that time the harness's own
//! client) installs, for the Rust side of the process: candle's tensors, the HTTP and
//! gRPC clients (ONNX Runtime, libtorch and OpenVINO bring their own). Two choices,
//! each measured:
//!
//! - **mimalloc, which keeps what is freed** ([`keep_freed_memory`]). candle allocates
//!   every activation afresh, and blocks of more than 32 MiB (ResNet-50 batch 8 has
//!   several) are beyond what the system allocator will cache: each was mapped, faulted
//!   in page by page and unmapped again, in every request. candle ResNet-50 batch 8
//!   spent 21 % of its CPU time in the kernel (875,000 page faults in 13 requests), and
//!   its windows scattered by up to 20 % while the engines with their own arenas agreed
//!   within 3 %. mimalloc returns freed memory to the system after 1 s by default,
//!   and a backend waits seconds for its next window while the others run theirs, so
//!   that default is switched off: 53,000 page faults, windows within 3 %, 5 % faster.
//!   Memory freed is kept for the life of the run, as an inference server that keeps
//!   its buffers would; the process never holds more than its largest moment needed.
//! - **Large blocks on a cache line.** Blocks of [`ALIGN_FROM`] bytes or more start on a
//!   64-byte boundary. candle keeps its weights and activations in plain Rust `Vec`s,
//!   which an allocator may place on 16-byte boundaries wherever the heap's history puts
//!   them, and its kernels' speed depends on that placement. So two candle backends
//!   opened one after the other ran at different speeds for the life of the run: in A/A
//!   runs (`candle@a` against `candle@b`, text-CNN batch 8) the second was 12-19 %
//!   faster in 10 runs of 10, a difference no interval can tell from a real one. With
//!   aligned blocks the same ratio was 0.98-1.04 in 4 runs. Small blocks keep the
//!   allocator's fast path (aligning every block of 64 bytes or more left the ratio at
//!   0.90-1.09, and cost the HTTP client's small buffers).
//!
//! The library only defines it: each binary installs it ([`LineAligned`] as its
//! `#[global_allocator]`, [`keep_freed_memory`] first thing in `main`), and a test
//! binary may bring its own (`tests/fuzz_decoders.rs` counts allocations).

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};

/// Size from which blocks are aligned to [`LINE`].
pub const ALIGN_FROM: usize = 4096;

/// A cache line.
pub const LINE: usize = 64;

/// mimalloc, with blocks of [`ALIGN_FROM`] bytes or more on a cache line.
pub struct LineAligned;

/// The layout a block of layout `l` is allocated (and so freed) with.
fn placed(l: Layout) -> Layout {
    if l.size() >= ALIGN_FROM && l.align() < LINE {
        // LINE is a power of two and a size the caller's layout allows is still allowed
        // (it rounds up to at most LINE - 1 bytes more, far below isize::MAX).
        Layout::from_size_align(l.size(), LINE).unwrap_or(l)
    } else {
        l
    }
}

// SAFETY: every block is allocated and freed by `MiMalloc` with the same layout,
// `placed` of the caller's layout, which is at least as strict as the caller's.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: `placed` keeps the size (non-zero, as the caller guarantees).
        unsafe { MiMalloc.alloc(placed(l)) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { MiMalloc.alloc_zeroed(placed(l)) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated with `placed(l)` (same size, so same layout).
        unsafe { MiMalloc.dealloc(p, placed(l)) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let old = placed(l);
        let Ok(wanted) = Layout::from_size_align(new_size, l.align()) else {
            return std::ptr::null_mut();
        };
        let new = placed(wanted);
        if new.align() == old.align() {
            // SAFETY: `p` was allocated with `old`; the alignment stays.
            return unsafe { MiMalloc.realloc(p, old, new_size) };
        }
        // Crossing ALIGN_FROM changes the alignment, which realloc cannot: move it.
        // SAFETY: `new` has a non-zero size; both blocks are valid for the bytes copied.
        unsafe {
            let q = MiMalloc.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                MiMalloc.dealloc(p, old);
            }
            q
        }
    }
}

/// mimalloc's option "purge delay": how long freed memory is kept before it is returned
/// to the system, in milliseconds; -1 keeps it. Its place in `mi_option_e` (v3, as v2);
/// a test checks it against the option's default, 1,000 ms (`options.c`; the header's
/// comment still says 10).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for the life of the process (see the module's documentation).
/// Call it first thing in `main`, before any other thread starts: mimalloc's option
/// setters are not thread safe.
pub fn keep_freed_memory() {
    // SAFETY: `PURGE_DELAY` is a valid option; the caller runs before other threads.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_names_mimallocs_purge_delay_and_can_be_switched_off() {
        // SAFETY: this test alone reads or sets mimalloc's options in this binary (which
        // does not allocate with mimalloc).
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(default, 1000, "mimalloc's purge delay defaults to 1,000 ms");
        super::keep_freed_memory();
        // SAFETY: as above.
        let kept = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(kept, -1);
    }
}
