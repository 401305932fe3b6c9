//! The HTTP client every HTTP backend (Flask, KServe v2 / Triton over HTTP, TF
//! Serving's REST API, TorchServe) and the metrics scraper use, one request-answer
//! exchange, and how its failures become [`BackendError`]s: one place, so the backends
//! differ only in their protocol, never in how they connect or count errors. Behind the
//! `http` feature.
//!
//! The client is lean on purpose, because the harness times it, and it should cost no
//! more than `wrk` does (`harness/benches/http_vs_wrk.rs`). Each request checks a
//! keep-alive connection out of the pool and runs its HTTP/1.1 exchange on it in the
//! calling task: the request's head is encoded once when the request is built, head and
//! body leave in one vectored write, and the answer is read into the connection's own
//! buffer and parsed with `httparse` (module `conn`; modules `wire` and `chunked` for
//! the pure parts). One write and one read per request, as with wrk, and no other task or thread
//! takes part. General clients cost more: reqwest (a task per connection, so cross-task
//! wake-ups per request) reached a quarter to two thirds of wrk's rate, and hyper's own
//! connection driven in the caller's task half to nine tenths, its time going to
//! channels, header maps and buffer copies.
//!
//! Two things a request does not pay for: a header map (only the headers that frame the
//! answer are read; the others are found by name when a caller asks, [`Headers`]), and a
//! timer of its own (the deadline is the connection's timer, re-armed only when it fires
//! early: [`crate::timer`]). One clock read per request sets its deadline.
//!
//! What it reads: `content-length` and `chunked` bodies, and bodies that end at the
//! close; `connection: close` and HTTP/1.0 are honoured; interim (1xx) answers are
//! skipped. What it does not: TLS, proxies, pipelining, compression (servers are on
//! loopback or at a URL the user gave, `http://` only).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use contract::BackendError;
use http::header::HeaderName;
use http::StatusCode;
use tokio::runtime::{Handle, Id};
use tokio::time::Instant;

pub use http::header::HeaderValue;

use crate::status::{self, Context};
use crate::Deadlines;
use conn::Conn;

/// Idle keep-alive connections a client keeps per server at least.
///
/// A request in flight holds a connection; when it returns, the pool keeps that
/// connection only while fewer than this many are idle, and closes it otherwise. The
/// harness has as many requests in flight as its concurrency (closed loop) or up to its
/// in-flight cap (open loop), which a backend is not told when it is opened: a pool
/// sized by `--workers` (2 by default) closed all but 2 connections after each request
/// at `--concurrency 64`, so later requests paid a new TCP handshake. An idle
/// connection costs one socket and no traffic, so the pool keeps up to this many.
pub const POOL_IDLE_CONNECTIONS: usize = 1024;

/// One request: its head encoded once (request line, `host`, and for a body its
/// `content-type` and `content-length`), and a body shared, never copied, between sends.
#[derive(Debug, Clone)]
pub struct Request {
    url: String,
    target: Result<wire::Target, String>,
    head: Vec<u8>,
    body: Bytes,
}

impl Request {
    /// `GET url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url, None, Bytes::new())
    }

    /// `POST url` with `body` of `content_type`.
    pub fn post(url: &str, content_type: &'static str, body: Bytes) -> Request {
        Request::new("POST", url, Some(content_type), body)
    }

    fn new(method: &str, url: &str, content_type: Option<&str>, body: Bytes) -> Request {
        let target = wire::target(url);
        let head = match &target {
            Ok(t) => wire::head(method, url, t, content_type.map(|c| (c, body.len()))),
            Err(_) => Vec::new(),
        };
        Request {
            url: url.to_string(),
            target,
            head,
            body,
        }
    }

    /// The request with header `name` (any case) set to `value`.
    ///
    /// # Panics
    /// If `name` is not a valid header name (names are constants of the caller).
    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Request {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        if self.target.is_ok() {
            self.head = wire::set_header(&self.head, &name, &value);
        }
        self
    }

    /// The URL, as error messages name it.
    pub fn url(&self) -> String {
        match &self.target {
            Ok(_) => self.url.clone(),
            Err(e) => e.clone(),
        }
    }
}

/// A whole answer, of any status.
#[derive(Debug)]
pub struct Response {
    /// The answer's status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: Headers,
    /// The answer's body.
    pub body: Bytes,
}

/// A successful answer: its headers and its whole body.
#[derive(Debug)]
pub struct Reply {
    /// The answer's headers.
    pub headers: Headers,
    /// The answer's body.
    pub body: Bytes,
}

/// An answer's headers: its head as it came (checked by `httparse`), sharing the
/// connection's buffer, searched by name when asked. No map is built: backends read one
/// header or none, and most answers are never asked.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    raw: Bytes,
}

impl Headers {
    fn new(raw: Bytes) -> Headers {
        Headers { raw }
    }

    /// The value of the first header called `name` (any case), without surrounding
    /// whitespace; `None` if there is none or it is not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(wire::find_header(&self.raw, name)?).ok()
    }

    /// The answer has a header called `name` (any case).
    pub fn contains_key(&self, name: &str) -> bool {
        wire::find_header(&self.raw, name).is_some()
    }
}

/// Why no answer came.
#[derive(Debug)]
pub enum Failure {
    /// The client's deadline (to connect, or for the whole request) passed.
    Timeout,
    /// The URL is not one the client can send to.
    Url(String),
    /// The connection could not be opened, or broke.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => write!(f, "deadline passed"),
            Failure::Url(m) | Failure::Io(m) => write!(f, "{m}"),
        }
    }
}

/// The innermost cause of an error: a library's own message is generic ("error
/// trying to connect"); "connection refused" is further down.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

/// The idle connections to one server (`host:port` as the URLs spell it) opened in one
/// runtime. A connection's socket and deadline timer are driven by the runtime it was
/// opened in (and a timer polled once its runtime is gone panics), so a client used from
/// several runtimes keeps their connections apart; those of a runtime that is gone stay
/// idle until the client is dropped (the harness runs one runtime).
struct Pool {
    authority: String,
    runtime: Id,
    idle: Vec<Conn>,
}

/// An HTTP/1.1 client keeping idle keep-alive connections per server. Cheap to clone
/// (clones share the pools).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    max_idle: usize,
    deadlines: Deadlines,
    /// The pools, each runtime's in the shard [`shard`] picks for it: the harness's load
    /// threads are a runtime each, and a lock shared by all would pass between cores on
    /// every request.
    pools: [Mutex<Vec<Pool>>; SHARDS],
}

/// Shards of [`Inner::pools`].
const SHARDS: usize = 16;

/// The shard of `runtime`'s pools: its id modulo [`SHARDS`]. tokio 1.54 numbers
/// runtimes from a counter, so runtimes made one after another take different shards;
/// tokio does not promise that, and if it changed, two runtimes would at worst share a
/// lock, never a pool (a pool is still found by runtime and server).
fn shard(runtime: Id) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<Number>::default().hash_one(runtime) as usize % SHARDS
}

/// The hasher that is the number it is given: an id's own value.
#[derive(Default)]
struct Number(u64);

impl std::hash::Hasher for Number {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("max_idle", &self.inner.max_idle)
            .field("deadlines", &self.inner.deadlines)
            .finish()
    }
}

/// What one try on one connection gave.
enum Outcome {
    /// An answer.
    Answer(Response),
    /// The request was never written: the connection had closed.
    Unsent(String),
    /// The connection closed before any answer came, perhaps after the request was
    /// written: on a reused connection, the server closing it while idle.
    Closed(String),
    /// The exchange failed otherwise, after the request was (perhaps) written.
    Broken(String),
    /// The request's deadline passed first.
    TimedOut,
}

impl Client {
    /// A client keeping up to `connections` (at least [`POOL_IDLE_CONNECTIONS`]) idle
    /// keep-alive connections per server, under `deadlines`.
    pub fn new(connections: usize, deadlines: Deadlines) -> Client {
        Client {
            inner: Arc::new(Inner {
                max_idle: connections.max(POOL_IDLE_CONNECTIONS),
                deadlines,
                pools: Default::default(),
            }),
        }
    }

    /// The client's deadlines.
    pub fn deadlines(&self) -> Deadlines {
        self.inner.deadlines
    }

    /// Sends `req` and reads the whole answer, whatever its status, within the request
    /// deadline.
    pub async fn send(&self, req: &Request) -> Result<Response, Failure> {
        self.send_timed(req).await
    }

    /// Sends `req` and reads the whole answer. A 2xx is a [`Reply`]; any other status is
    /// the counted error of [`status::http_error`] with the server's message
    /// ([`error_message`]); no answer is [`transport_error`].
    pub async fn exchange(&self, req: &Request, ctx: Context<'_>) -> Result<Reply, BackendError> {
        match self.send_timed(req).await {
            Ok(r) if r.status.is_success() => Ok(Reply {
                headers: r.headers,
                body: r.body,
            }),
            Ok(r) => Err(status::http_error(
                ctx,
                r.status.as_u16(),
                error_message(&r.body),
            )),
            Err(e) => Err(transport_error(&req.url(), e, ctx.deadline_ms)),
        }
    }

    /// Sends `req` within the request deadline, which counts from here: connecting, every
    /// try and the wait for the answer all end by it ([`Failure::Timeout`]).
    async fn send_timed(&self, req: &Request) -> Result<Response, Failure> {
        let deadline = crate::timer::deadline_after(Instant::now(), self.inner.deadlines.request);
        self.send_by(req, deadline).await
    }

    async fn send_by(&self, req: &Request, deadline: Instant) -> Result<Response, Failure> {
        let target = req.target.as_ref().map_err(|e| Failure::Url(e.clone()))?;
        let authority = &req.url[target.authority.clone()];
        let runtime = Handle::current().id();
        // A keep-alive connection may close while it idles in the pool (the server's
        // keep-alive timeout, a worker recycled): a request that meets such a
        // connection goes again, as browsers and Go's client do. Never written, it
        // tries the next idle connection; perhaps written, it goes once more on a new
        // connection only, so a request that makes the server hang up is sent at most
        // twice. Its latency includes the retry, as a user's would.
        let mut fresh_only = false;
        loop {
            let idle = if fresh_only {
                None
            } else {
                self.checkout(authority, runtime)
            };
            let (mut conn, reused) = match idle {
                Some(c) => (c, true),
                None => (
                    self.connect(&req.url[target.host.clone()], target.port, deadline)
                        .await?,
                    false,
                ),
            };
            let (outcome, reusable) = conn.exchange(&req.head, &req.body, deadline).await;
            if reusable {
                self.checkin(authority, runtime, conn);
            }
            match outcome {
                Outcome::Answer(response) => return Ok(response),
                Outcome::TimedOut => return Err(Failure::Timeout),
                Outcome::Unsent(_) if reused => {}
                Outcome::Closed(_) if reused => fresh_only = true,
                Outcome::Unsent(e) | Outcome::Closed(e) | Outcome::Broken(e) => {
                    return Err(Failure::Io(e))
                }
            }
        }
    }

    fn checkout(&self, authority: &str, runtime: Id) -> Option<Conn> {
        let shard = &self.inner.pools[shard(runtime)];
        let mut pools = shard.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pools
            .iter_mut()
            .find(|p| p.runtime == runtime && p.authority == authority)?;
        pool.idle.pop()
    }

    fn checkin(&self, authority: &str, runtime: Id, conn: Conn) {
        let shard = &self.inner.pools[shard(runtime)];
        let mut pools = shard.lock().unwrap_or_else(|e| e.into_inner());
        let at = match pools
            .iter()
            .position(|p| p.runtime == runtime && p.authority == authority)
        {
            Some(i) => i,
            None => {
                pools.push(Pool {
                    authority: authority.to_string(),
                    runtime,
                    idle: Vec::new(),
                });
                pools.len() - 1
            }
        };
        let idle = &mut pools[at].idle;
        if idle.len() < self.inner.max_idle {
            idle.push(conn);
        }
    }

    /// Opens a connection within the connect deadline and the request's `deadline` (a
    /// timer of its own: a new connection is rare).
    async fn connect(&self, host: &str, port: u16, deadline: Instant) -> Result<Conn, Failure> {
        let by = crate::timer::deadline_after(Instant::now(), self.inner.deadlines.connect)
            .min(deadline);
        match tokio::time::timeout_at(by, Conn::open(host, port, deadline)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(Failure::Io(innermost(&e))),
            Err(_) => Err(Failure::Timeout),
        }
    }
}

/// A failed exchange with `url`: the client's deadline passed (`timeout`, carrying
/// `deadline_ms`), or a transport error naming the cause.
pub fn transport_error(url: &str, e: Failure, deadline_ms: u64) -> BackendError {
    match e {
        Failure::Timeout => BackendError::Timeout(deadline_ms),
        Failure::Url(m) => BackendError::Transport(m),
        Failure::Io(cause) => BackendError::Transport(format!("{url}: {cause}")),
    }
}

/// The message of an error body: `{"error": "..."}` as Flask, Triton, TF Serving and
/// MLServer write it, or `{"message": "..."}` as TorchServe does, else the body's first
/// line (at most 200 characters).
pub fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(body) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(m)) = doc.get(key) {
                return m.clone();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty body)".into()
    } else {
        line.chars().take(200).collect()
    }
}

mod chunked;
mod conn;
#[cfg(test)]
mod tests;
mod wire;
