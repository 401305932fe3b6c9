//! The load threads: one single-threaded tokio runtime per core, each on its own
//! thread, started on first use and kept for the life of the process. The closed
//! loop's tasks run here, and so does what is left of each open-loop request after its
//! sender thread has made the send.
//!
//! Why not the harness's multi-threaded runtime: there, one worker polls the sockets
//! and hands each woken load task to whichever worker is free, so an answer often
//! costs a wake-up of another thread before its task runs, and tasks move between
//! threads. `wrk` runs each connection on one thread's own event loop, and on a loaded
//! 2-core machine that hand-off was what set the harness behind it (at 8 and 64
//! connections, `harness/benches/http_vs_wrk.rs`). Here, as in `wrk`, a load task
//! stays on the thread it was given, and the thread that sees its answer arrive runs it.
//!
//! The runtimes live as long as the process because what a load task opens belongs to
//! the runtime it ran on: the HTTP client pools its keep-alive connections per runtime,
//! and [`super::deadline`] its timers. Runtimes made per window would leave their
//! connections behind at every window. [`shutdown`] (called by [`crate::run`] as it
//! ends) stops them, dropping any task still there and with it its backend.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Name of the load threads, counted as client threads by [`super::cpu`].
pub const LOAD_THREAD_NAME: &str = "sb-load";

/// The running load threads.
struct Threads {
    handles: Vec<Handle>,
    /// Where the next task goes (round robin over `handles`).
    next: AtomicUsize,
    /// Set by [`shutdown`]: no more work goes to the threads.
    stopped: AtomicBool,
    /// What stops each thread, and the thread to join; emptied by [`shutdown`].
    running: Mutex<Vec<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>>,
}

static THREADS: OnceLock<Threads> = OnceLock::new();

/// How many load threads there are: one per core the process may use.
pub fn count() -> usize {
    threads().handles.len()
}

/// The load thread to run the next task on, each call the next one in turn; `None` once
/// [`shutdown`] has stopped them (or if none could be started), so the caller runs its
/// tasks on its own runtime.
pub fn next() -> Option<Handle> {
    let t = threads();
    if t.handles.is_empty() || t.stopped.load(Ordering::Acquire) {
        return None;
    }
    let i = t.next.fetch_add(1, Ordering::Relaxed) % t.handles.len();
    Some(t.handles[i].clone())
}

/// Stops the load threads: each drops the tasks still on it and ends; waits for them.
/// Later [`next`]s answer `None`.
pub fn shutdown() {
    let Some(t) = THREADS.get() else { return };
    t.stopped.store(true, Ordering::Release);
    let running = match t.running.lock() {
        Ok(mut r) => std::mem::take(&mut *r),
        Err(_) => return,
    };
    for (stop, thread) in running {
        let _ = stop.send(());
        let _ = thread.join();
    }
}

fn threads() -> &'static Threads {
    THREADS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut handles = Vec::new();
        let mut running = Vec::new();
        for i in 0..cores {
            match start(i) {
                Ok((handle, stop, thread)) => {
                    handles.push(handle);
                    running.push((stop, thread));
                }
                Err(e) => {
                    eprintln!("warning: load thread {i} did not start ({e}); the closed loop runs on the main runtime");
                    break;
                }
            }
        }
        if handles.len() < cores {
            // All or none: a partial set would put more tasks on some cores.
            for (stop, thread) in running.drain(..) {
                let _ = stop.send(());
                let _ = thread.join();
            }
            handles.clear();
        }
        Threads {
            handles,
            next: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            running: Mutex::new(running),
        }
    })
}

type Started = (Handle, oneshot::Sender<()>, std::thread::JoinHandle<()>);

/// Starts load thread `i`: a single-threaded runtime driven until it is told to stop.
fn start(i: usize) -> std::io::Result<Started> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("{LOAD_THREAD_NAME}-{i}"))
        .spawn(move || {
            // Sockets and timers. (tokio builds its signal and process drivers under
            // any enabled I/O driver, so a park still checks for exited children: a
            // small cost, 0.08 % of the samples in a profile of http_vs_wrk at c=1.)
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(rt.handle().clone()));
            let _ = rt.block_on(stopped);
            // Dropping the runtime drops the tasks still on it.
        })?;
    match rx.recv() {
        Ok(Ok(handle)) => Ok((handle, stop, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(std::io::Error::other(
                "the load thread ended before its runtime started",
            ))
        }
    }
}
