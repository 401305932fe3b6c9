//! The HTTP client every HTTP backend (Flask, KServe v2 / Triton over HTTP, TF
//! Serving's REST API, TorchServe) and the metrics scraper use, one request-answer
//! exchange, and how its failures become [`BackendError`]s: one place, so the backends
//! differ only in their protocol, never in how they connect or count errors. Behind the
//! `http` feature.
//!
//! The client is lean on purpose, because the harness times it: each request runs its
//! HTTP/1.1 exchange on a keep-alive connection it checks out of the pool, driving that
//! connection (hyper's `client::conn::http1`) in the calling task itself. A general
//! client (reqwest, hyper-util's pooled client) drives every connection from a task of
//! its own, so each request crosses tasks, often threads, several times: against a
//! fast local server reqwest reached a quarter to two thirds of wrk's rate
//! (`harness/benches/http_vs_wrk.rs`). Here a request costs one write and one read on
//! its socket, as with wrk, and no thread wake-up beyond the socket's (module `relay`).
//! Plain `http://` only (no TLS, no proxies: servers are on loopback or a URL the user
//! gave).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use contract::BackendError;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderMap, HeaderName, CONTENT_TYPE, HOST};
use hyper::http::uri::{Authority, PathAndQuery};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub use hyper::header::HeaderValue;

use crate::status::{self, Context};
use crate::Deadlines;

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

/// One request: method, URL, headers and a body shared, never copied, between sends.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: Result<Uri, String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    /// `GET url`.
    pub fn get(url: &str) -> Request {
        Request::new(Method::GET, url, Bytes::new())
    }

    /// `POST url` with `body` of `content_type`.
    pub fn post(url: &str, content_type: &'static str, body: Bytes) -> Request {
        let mut r = Request::new(Method::POST, url, body);
        r.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    }

    fn new(method: Method, url: &str, body: Bytes) -> Request {
        let url = match Uri::try_from(url) {
            Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => Ok(u),
            Ok(_) => Err(format!("{url}: not an http:// URL with a host")),
            Err(e) => Err(format!("{url}: not a valid URL: {e}")),
        };
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body,
        }
    }

    /// The request with header `name` (any case) set to `value`.
    ///
    /// # Panics
    /// If `name` is not a valid header name (names are constants of the caller).
    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Request {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        self.headers.insert(name, value);
        self
    }

    /// The URL, as error messages name it.
    pub fn url(&self) -> String {
        match &self.url {
            Ok(u) => u.to_string(),
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
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
}

/// A successful answer: its headers and its whole body.
#[derive(Debug)]
pub struct Reply {
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The answer's body.
    pub body: Bytes,
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

type Sender = http1::SendRequest<Full<Bytes>>;
type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One keep-alive connection: its request handle and the future that drives it.
struct Conn {
    sender: Sender,
    driver: Driver,
}

/// The idle connections to one server (`host:port`).
struct Pool {
    authority: Authority,
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
    pools: Mutex<Vec<Pool>>,
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
}

impl Client {
    /// A client keeping up to `connections` (at least [`POOL_IDLE_CONNECTIONS`]) idle
    /// keep-alive connections per server, under `deadlines`.
    pub fn new(connections: usize, deadlines: Deadlines) -> Client {
        Client {
            inner: Arc::new(Inner {
                max_idle: connections.max(POOL_IDLE_CONNECTIONS),
                deadlines,
                pools: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The client's deadlines.
    pub fn deadlines(&self) -> Deadlines {
        self.inner.deadlines
    }

    /// Sends `req` and reads the whole answer, whatever its status, within the request
    /// deadline.
    pub async fn send(&self, req: Request) -> Result<Response, Failure> {
        let deadline = self.inner.deadlines.request;
        match tokio::time::timeout(deadline, self.send_now(req)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Sends `req` and reads the whole answer. A 2xx is a [`Reply`]; any other status is
    /// the counted error of [`status::http_error`] with the server's message
    /// ([`error_message`]); no answer is [`transport_error`].
    pub async fn exchange(&self, req: Request, ctx: Context<'_>) -> Result<Reply, BackendError> {
        let url = req.url.clone();
        match self.send(req).await {
            Ok(r) if r.status.is_success() => Ok(Reply {
                headers: r.headers,
                body: r.body,
            }),
            Ok(r) => Err(status::http_error(
                ctx,
                r.status.as_u16(),
                error_message(&r.body),
            )),
            Err(e) => {
                let url = url.map_or_else(|e| e, |u| u.to_string());
                Err(transport_error(&url, e, ctx.deadline_ms))
            }
        }
    }

    async fn send_now(&self, req: Request) -> Result<Response, Failure> {
        let uri = req.url.map_err(Failure::Url)?;
        let authority = uri.authority().expect("checked when built").clone();
        let mut parts = hyper::http::uri::Parts::default();
        parts.path_and_query = Some(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let target = Uri::from_parts(parts).map_err(|e| Failure::Url(e.to_string()))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| Failure::Url(format!("{uri}: {e}")))?;
        let mut headers = req.headers;
        headers.insert(HOST, host);
        let request = || {
            let mut request = hyper::Request::new(Full::new(req.body.clone()));
            *request.method_mut() = req.method.clone();
            *request.uri_mut() = target.clone();
            *request.headers_mut() = headers.clone();
            request
        };
        // A keep-alive connection may close while it idles in the pool (the server's
        // keep-alive timeout, a worker recycled): a request that meets such a
        // connection goes again, as browsers and Go's client do. Never written, it
        // tries the next idle connection; perhaps written, it goes once more on a new
        // connection only, so a request that makes the server hang up is sent at most
        // twice. Its latency includes the retry, as a user's would.
        let mut fresh_only = false;
        loop {
            let (conn, reused) = match self.checkout(&authority).filter(|_| !fresh_only) {
                Some(c) => (c, true),
                None => (self.connect(&authority).await?, false),
            };
            let (outcome, conn) = conn.exchange(request()).await;
            if let Some(conn) = conn {
                self.checkin(&authority, conn);
            }
            match outcome {
                Outcome::Answer(response) => return Ok(response),
                Outcome::Unsent(_) if reused => {}
                Outcome::Closed(_) if reused => fresh_only = true,
                Outcome::Unsent(e) | Outcome::Closed(e) | Outcome::Broken(e) => {
                    return Err(Failure::Io(e))
                }
            }
        }
    }

    fn checkout(&self, authority: &Authority) -> Option<Conn> {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pools.iter_mut().find(|p| p.authority == *authority)?;
        pool.idle.pop()
    }

    fn checkin(&self, authority: &Authority, conn: Conn) {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        let at = match pools.iter().position(|p| p.authority == *authority) {
            Some(i) => i,
            None => {
                pools.push(Pool {
                    authority: authority.clone(),
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

    /// Opens a connection (TCP_NODELAY: a request is one write, never held back).
    async fn connect(&self, authority: &Authority) -> Result<Conn, Failure> {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let open = async {
            let stream = TcpStream::connect((host, port))
                .await
                .map_err(|e| Failure::Io(innermost(&e)))?;
            stream
                .set_nodelay(true)
                .map_err(|e| Failure::Io(innermost(&e)))?;
            let (sender, driver) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| Failure::Io(innermost(&e)))?;
            Ok(Conn { sender, driver })
        };
        match tokio::time::timeout(self.inner.deadlines.connect, open).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }
}

impl Conn {
    /// One request on this connection, driving it from the calling task until the
    /// whole answer is read; the connection back if it may serve another request.
    async fn exchange(self, request: hyper::Request<Full<Bytes>>) -> (Outcome, Option<Conn>) {
        let Conn { mut sender, driver } = self;
        let mut driver = Some(driver);
        let outcome = {
            let work = async {
                if let Err(e) = sender.ready().await {
                    return Outcome::Unsent(innermost(&e));
                }
                let response = match sender.try_send_request(request).await {
                    Ok(r) => r,
                    Err(mut e) => {
                        let cause = innermost(e.error());
                        return match e.take_message() {
                            Some(_) => Outcome::Unsent(cause),
                            None if e.error().is_incomplete_message() => Outcome::Closed(cause),
                            None => Outcome::Broken(cause),
                        };
                    }
                };
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Ok(body) => Outcome::Answer(Response {
                        status: parts.status,
                        headers: parts.headers,
                        body: body.to_bytes(),
                    }),
                    Err(e) => Outcome::Broken(innermost(&e)),
                }
            };
            // The connection first (it writes the request and reads the answer),
            // then the request; a connection that ends (the server closed it, or an
            // I/O error) is dropped at once, which fails a request still waiting on it.
            relay::drive(&mut driver, std::pin::pin!(work)).await
        };
        let conn = match outcome {
            Outcome::Answer(_) => driver
                .filter(|_| !sender.is_closed())
                .map(|driver| Conn { sender, driver }),
            _ => None,
        };
        (outcome, conn)
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

mod relay;
#[cfg(test)]
mod tests;
