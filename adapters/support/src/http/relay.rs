//! Polling a connection and its request together, from one task, without waking that
//! task for what the same poll already does.
//!
//! The connection (hyper's dispatcher) and the request talk through channels: sending
//! the request wakes the connection, the answer wakes the request. Both run in the
//! caller's task, so every such wake would wake the task itself while it runs, and a
//! multi-threaded tokio runtime answers a task's self-wake by queueing it again and
//! waking an idle worker to steal it: two or three wasted thread wake-ups per request,
//! which cost more than the request on a fast local server. Here both futures are
//! polled with a relay waker: a wake during the poll only asks for another pass; a wake
//! afterwards (the socket became readable, the deadline) goes to the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// Passes before the relay gives the task back to the scheduler (a future that wakes
/// itself on every poll, as tokio's cooperative budget makes I/O do, must not spin).
const PASSES: usize = 8;

struct Relay {
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => {
                if let Some(w) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    w.wake_by_ref();
                }
            }
        }
    }
}

/// Polls `driver` (while it runs; `None` once it has finished) then `work`, until `work`
/// is ready. A `driver` that finishes is dropped at once.
pub(super) async fn drive<D, W>(driver: &mut Option<D>, work: Pin<&mut W>) -> W::Output
where
    D: Future + Unpin,
    W: Future,
{
    let relay = Arc::new(Relay {
        state: AtomicU8::new(IDLE),
        task: Mutex::new(None),
    });
    let waker = Waker::from(relay.clone());
    let mut work = work;
    std::future::poll_fn(move |cx| {
        {
            let mut task = relay.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut inner = Context::from_waker(&waker);
        for _ in 0..PASSES {
            relay.state.store(POLLING, Ordering::Release);
            if let Some(d) = driver.as_mut() {
                if Pin::new(d).poll(&mut inner).is_ready() {
                    *driver = None;
                }
            }
            if let Poll::Ready(out) = work.as_mut().poll(&mut inner) {
                relay.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
            if relay
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
        }
        // Still being woken: let the scheduler run others first.
        relay.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
