//! Waiting for a due time to within microseconds, on a plain OS thread.
//!
//! tokio's timer has a 1 ms resolution and fires on the runtime that also handles the
//! answers, so a send it wakes goes out up to milliseconds late. [`wait_until`] instead
//! sleeps on the OS until [`SPIN_BEFORE`] before the due time, then spins the rest.
//! [`tighten_timer_slack`] cuts the calling thread's timer slack to 1 ns first, so the
//! kernel does not round each sleep up by its default 50 µs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long before the due time the thread stops sleeping and spins.
pub const SPIN_BEFORE: Duration = Duration::from_micros(150);

/// The longest single sleep, so a stop request is seen within this time.
const NAP_MAX: Duration = Duration::from_millis(5);

/// Asks the kernel to wake the calling thread's sleeps on time (Linux: timer slack of
/// 1 ns instead of 50 µs). Elsewhere a no-op.
pub fn tighten_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and only changes this thread.
    unsafe {
        let slack: libc::c_ulong = 1;
        libc::prctl(libc::PR_SET_TIMERSLACK, slack);
    }
}

/// Waits until `due`: sleeps until [`SPIN_BEFORE`] before it, then spins. Returns
/// `false` as soon as `stop` is set (checked at least every 5 ms), `true` at `due`.
pub fn wait_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let Some(left) = due.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            return true;
        };
        if left > SPIN_BEFORE {
            std::thread::sleep((left - SPIN_BEFORE).min(NAP_MAX));
        } else {
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_due_time_and_stops_when_asked() {
        tighten_timer_slack();
        let never = AtomicBool::new(false);
        let due = Instant::now() + Duration::from_millis(3);
        assert!(wait_until(due, &never));
        assert!(Instant::now() >= due);
        // A due time in the past returns at once.
        assert!(wait_until(
            Instant::now() - Duration::from_millis(1),
            &never
        ));
        let stop = AtomicBool::new(true);
        assert!(!wait_until(Instant::now() + Duration::from_secs(60), &stop));
    }
}
