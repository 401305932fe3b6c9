//! What the error-kind tests of the server backends share: the failures and the kind
//! each must be counted as, and test doubles, tiny servers on 127.0.0.1 that stand in
//! for a real server where the real one cannot be made to fail that way (never
//! benchmark targets; each is stopped when dropped).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use contract::{BackendError, Description, Device, OpenOptions, Protocol};

/// A listener on a free loopback port, served by `serve` on its own thread until
/// dropped.
pub struct Double {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Double {
    fn start(serve: impl Fn(TcpStream, &Mutex<Vec<TcpStream>>) + Send + 'static) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (stop2, held2) = (stop.clone(), held.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        serve(s, &held2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Double {
            url,
            stop,
            held,
            thread: Some(thread),
        }
    }

    /// Accepts every connection and never answers: the client's deadline must end the
    /// request (HTTP/1.1 and gRPC alike).
    pub fn silent() -> Double {
        Double::start(|s, held| held.lock().unwrap().push(s))
    }

    /// Answers every HTTP request with `status` and the JSON `body`, then closes.
    pub fn answering(status: u16, body: String) -> Double {
        Double::start(move |mut s, _| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            read_request(&mut s);
            let _ = write!(
                s,
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        })
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body).
fn read_request(s: &mut TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Ok(n) = s.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return;
        }
    }
}

/// The text-CNN on one worker of one thread.
pub fn text_cnn(fixtures_dir: std::path::PathBuf) -> OpenOptions {
    OpenOptions {
        models: vec!["text-cnn".into()],
        fixtures_dir,
        workers: 1,
        intra_threads: 1,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

/// A client deadline short enough for a test: 300 ms per request.
pub fn short_deadlines() -> support::Deadlines {
    support::Deadlines {
        connect: Duration::from_secs(5),
        request: Duration::from_millis(300),
    }
}

/// A description for a backend built by hand in a test.
pub fn description(name: &str, protocol: Protocol, models: &[&str]) -> Description {
    Description {
        name: name.into(),
        engine: "test".into(),
        protocol,
        device: "cpu".into(),
        workers: 1,
        intra_threads: None,
        models: models.iter().map(|m| m.to_string()).collect(),
        served_by_test_peer: false,
        details: Default::default(),
    }
}

/// The failures every server backend must count alike, and their kinds.
pub const KINDS: [(&str, &str); 4] = [
    ("unknown model", "unknown_model"),
    ("wrong shape", "bad_input"),
    ("server error", "server"),
    ("timeout", "timeout"),
];

/// Asserts that `failure` (one of [`KINDS`]) of `backend` gave its kind, and prints the
/// row for the record.
pub fn assert_kind<T: std::fmt::Debug>(
    backend: &str,
    failure: &str,
    how: &str,
    got: Result<T, BackendError>,
) {
    let want = KINDS
        .iter()
        .find(|(f, _)| *f == failure)
        .unwrap_or_else(|| panic!("unknown failure {failure}"))
        .1;
    let e = got.expect_err(&format!("{backend}: {failure} must fail"));
    println!(
        "error kind | {backend} | {failure} ({how}) | {} | {e}",
        e.kind()
    );
    assert_eq!(e.kind(), want, "{backend}: {failure} ({how}): {e}");
}
