//! The `harness` binary; everything happens in [`harness::run`].
//!
//! One thing lives here rather than in the library: the process's allocator. Blocks of
//! [`ALIGN_FROM`] bytes or more start on a 64-byte (cache-line) boundary. candle keeps
//! its weights and activations in plain Rust `Vec`s, which the system allocator places
//! on 16-byte boundaries wherever the heap's history puts them, and its kernels' speed
//! depends on that placement. So two candle backends opened one after the other ran at
//! different speeds for the life of the run: in A/A runs (`candle@a` against
//! `candle@b`, text-CNN batch 8) the second was 12-19 % faster in 10 runs of 10, a
//! difference no interval can tell from a real one. With aligned blocks the same ratio
//! was 0.98-1.04 in 4 runs. ONNX Runtime, libtorch and OpenVINO align their own
//! buffers. Small blocks keep the system allocator's fast path (aligning every block
//! of 64 bytes or more left the ratio at 0.90-1.09, and costs the HTTP client's small
//! buffers). The library does not set it: a test binary may bring its own allocator
//! (`tests/fuzz_decoders.rs` counts allocations).

use std::alloc::{GlobalAlloc, Layout, System};

/// Size from which blocks are aligned to [`LINE`].
const ALIGN_FROM: usize = 4096;

/// A cache line.
const LINE: usize = 64;

/// The system allocator, with blocks of [`ALIGN_FROM`] bytes or more on a cache line.
struct LineAligned;

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

// SAFETY: every block is allocated and freed by `System` with the same layout,
// `placed` of the caller's layout, which is at least as strict as the caller's.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: `placed` keeps the size (non-zero, as the caller guarantees).
        unsafe { System.alloc(placed(l)) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(placed(l)) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated with `placed(l)` (same size, so same layout).
        unsafe { System.dealloc(p, placed(l)) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let old = placed(l);
        let Ok(wanted) = Layout::from_size_align(new_size, l.align()) else {
            return std::ptr::null_mut();
        };
        let new = placed(wanted);
        if new.align() == old.align() {
            // SAFETY: `p` was allocated with `old`; the alignment stays.
            return unsafe { System.realloc(p, old, new_size) };
        }
        // Crossing ALIGN_FROM changes the alignment, which realloc cannot: move it.
        // SAFETY: `new` has a non-zero size; both blocks are valid for the bytes copied.
        unsafe {
            let q = System.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                System.dealloc(p, old);
            }
            q
        }
    }
}

#[global_allocator]
static ALLOCATOR: LineAligned = LineAligned;

fn main() -> std::process::ExitCode {
    harness::run(std::env::args_os())
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_start_on_a_cache_line_and_keep_their_bytes_when_moved() {
        let mut v: Vec<u8> = (0..100u8).collect();
        assert!(v.as_ptr() as usize % 16 == 0);
        for grow in [super::ALIGN_FROM, 3 * super::ALIGN_FROM, 40_000] {
            v.resize(grow, 7);
            assert_eq!(v.as_ptr() as usize % super::LINE, 0, "{grow} bytes");
            assert_eq!(v[..100], (0..100u8).collect::<Vec<_>>()[..]);
        }
        v.truncate(100);
        v.shrink_to_fit();
        assert_eq!(v, (0..100u8).collect::<Vec<_>>());
        let floats = vec![1.5f32; 10_000];
        assert_eq!(floats.as_ptr() as usize % super::LINE, 0);
        assert!(floats.iter().all(|&x| x == 1.5));
    }
}
