//! The `harness` binary; everything happens in [`harness::run`]. It installs the
//! process's allocator ([`harness::alloc`]), which the library leaves to each binary.

#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

fn main() -> std::process::ExitCode {
    harness::alloc::keep_freed_memory();
    harness::run(std::env::args_os())
}

#[cfg(test)]
mod tests {
    // Run with this binary's allocator: blocks come from `LineAligned`.
    #[test]
    fn large_blocks_start_on_a_cache_line_and_keep_their_bytes_when_moved() {
        let mut v: Vec<u8> = (0..100u8).collect();
        assert!(v.as_ptr() as usize % 16 == 0);
        for grow in [
            harness::alloc::ALIGN_FROM,
            3 * harness::alloc::ALIGN_FROM,
            40_000,
        ] {
            v.resize(grow, 7);
            assert_eq!(
                v.as_ptr() as usize % harness::alloc::LINE,
                0,
                "{grow} bytes"
            );
            assert_eq!(v[..100], (0..100u8).collect::<Vec<_>>()[..]);
        }
        v.truncate(100);
        v.shrink_to_fit();
        assert_eq!(v, (0..100u8).collect::<Vec<_>>());
        let floats = vec![1.5f32; 10_000];
        assert_eq!(floats.as_ptr() as usize % harness::alloc::LINE, 0);
        assert!(floats.iter().all(|&x| x == 1.5));
    }
}
