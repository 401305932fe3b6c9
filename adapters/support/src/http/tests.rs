use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// What the test server answers a request for `path` with body `body`: the status
/// line's code, extra headers, the body, and whether to close the connection after.
fn answer(path: &str, body: &[u8], served: usize) -> (u16, &'static str, Vec<u8>, bool) {
    match path {
        "/echo" => (200, "", body.to_vec(), false),
        "/missing" => (404, "", br#"{"error": "no such model"}"#.to_vec(), false),
        // Closes after answering, without saying so: the next request on that
        // connection finds it closed.
        "/close-silently" => (200, "", b"bye".to_vec(), true),
        "/close" => (200, "connection: close\r\n", b"closing".to_vec(), true),
        // Answers; the next request on that connection is read and never answered.
        "/drop-next" => (200, "", b"armed".to_vec(), false),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(400));
            (200, "", b"late".to_vec(), false)
        }
        "/pause" => {
            std::thread::sleep(Duration::from_millis(150));
            (200, "", b"paused".to_vec(), false)
        }
        _ => (200, "", format!("connections {served}").into_bytes(), false),
    }
}

/// Whole answers written as they are, for the framings `answer` does not write, and
/// whether to close the connection after.
fn raw(path: &str) -> Option<(Vec<u8>, bool)> {
    let (text, close): (&[u8], bool) = match path {
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n",
            false,
        ),
        "/until-close" => (b"HTTP/1.0 200 OK\r\nx-a: b\r\n\r\nto the end", true),
        "/http10" => (b"HTTP/1.0 200 OK\r\ncontent-length: 4\r\n\r\n1.0!", false),
        "/interim" => (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            false,
        ),
        "/no-content" => (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        "/cut" => (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", true),
        "/big" => {
            let mut all = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
            all.extend((0..BIG).map(|i| (i % 251) as u8));
            return Some((all, false));
        }
        _ => return None,
    };
    Some((text.to_vec(), close))
}

/// Bytes of the `/big` answer's body: several reads, and more than a connection keeps.
const BIG: usize = 3 << 20;

/// A keep-alive HTTP/1.1 server on a free port, one thread per connection, counting
/// connections. Echoes the request's `host` and `content-type` in `x-host` / `x-type`.
fn serve() -> (u16, &'static AtomicUsize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let served = count.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::spawn(move || connection(stream, served));
        }
    });
    (port, count)
}

fn connection(stream: TcpStream, served: usize) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut drop_next = false;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let (mut length, mut host, mut kind) = (0, String::new(), String::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap(),
                "host" => host = value,
                "content-type" => kind = value,
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        // `/hang-up`: the request is read and the connection closed, with no answer.
        if drop_next || path == "/hang-up" {
            return;
        }
        drop_next = path == "/drop-next";
        if let Some((all, close)) = raw(&path) {
            if writer.write_all(&all).is_err() || close {
                return;
            }
            continue;
        }
        let (code, extra, out, close) = answer(&path, &body, served);
        let head = format!(
            "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nx-host: {host}\r\nx-type: {kind}\r\n{extra}\r\n",
            out.len()
        );
        if writer.write_all(&[head.as_bytes(), &out].concat()).is_err() || close {
            return;
        }
    }
}

fn ctx() -> Context<'static> {
    Deadlines::default().context("the test server", "m")
}

/// The error of a GET of `url` that must fail.
async fn get_err(client: &Client, url: &str) -> BackendError {
    client
        .exchange(&Request::get(url), ctx())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn keep_alive_exchanges_reuse_one_connection_and_recover_from_closed_ones() {
    let (port, connections) = serve();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(1, Deadlines::default());
    // A body goes out intact, with its content type and the host.
    let body = Bytes::from_static(b"{\"instances\": [[1, 2]]}");
    let r = Request::post(&format!("{base}/echo"), "application/json", body.clone())
        .header("X-Extra", HeaderValue::from(7usize));
    let reply = client.exchange(&r, ctx()).await.unwrap();
    assert_eq!(reply.body, body);
    assert_eq!(reply.headers.get("X-Type"), Some("application/json"));
    assert_eq!(
        reply.headers.get("x-host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(
        !reply.headers.contains_key("x-extra"),
        "{:?}",
        reply.headers
    );
    // Sequential requests share the one keep-alive connection.
    for _ in 0..5 {
        let reply = client.exchange(&Request::get(&base), ctx()).await.unwrap();
        assert_eq!(reply.body, "connections 1");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    // An error status is counted with the server's message; the connection stays.
    let e = get_err(&client, &format!("{base}/missing")).await;
    assert_eq!(e.kind(), "unknown_model", "{e}");
    assert!(e.to_string().contains("no such model"), "{e}");
    // A server that closes an idle connection: the request goes again on a new one,
    // whether the client notices the close before writing (the sleep, mostly) or after.
    let reply = client
        .exchange(&Request::get(&format!("{base}/close-silently")), ctx())
        .await
        .unwrap();
    assert_eq!(reply.body, "bye");
    std::thread::sleep(Duration::from_millis(50));
    let reply = client.exchange(&Request::get(&base), ctx()).await.unwrap();
    assert_eq!(reply.body, "connections 2");
    // `connection: close` is honoured: the next request opens another connection.
    let reply = client
        .exchange(&Request::get(&format!("{base}/close")), ctx())
        .await
        .unwrap();
    assert_eq!(reply.body, "closing");
    let reply = client.exchange(&Request::get(&base), ctx()).await.unwrap();
    assert_eq!(reply.body, "connections 3");
    // A reused connection closed after the request was written, before any answer:
    // the request goes once more, on a new connection.
    let reply = client
        .exchange(&Request::get(&format!("{base}/drop-next")), ctx())
        .await
        .unwrap();
    assert_eq!(reply.body, "armed");
    let reply = client.exchange(&Request::get(&base), ctx()).await.unwrap();
    assert_eq!(reply.body, "connections 4");
    // A request the server always hangs up on is sent twice at most (the reused
    // connection, then one new one), and then is a transport error.
    let e = get_err(&client, &format!("{base}/hang-up")).await;
    assert_eq!(e.kind(), "transport", "{e}");
    assert!(e.to_string().contains("closed before"), "{e}");
    assert_eq!(connections.load(Ordering::SeqCst), 5);
    // Requests in flight together each hold a connection, and all of them stay idle.
    let many = (0..4).map(|_| {
        let (client, url) = (client.clone(), format!("{base}/slow"));
        async move { client.exchange(&Request::get(&url), ctx()).await }
    });
    for r in futures_join(many).await {
        assert_eq!(r.unwrap().body, "late");
    }
    let shard = &client.inner.pools[super::shard(tokio::runtime::Handle::current().id())];
    let idle = shard.lock().unwrap()[0].idle.len();
    assert_eq!(idle, 4, "every connection of the burst is kept");
    // The request deadline is a counted timeout.
    let short = Client::new(
        1,
        Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(50),
        },
    );
    let e = get_err(&short, &format!("{base}/slow")).await;
    assert_eq!(e.kind(), "timeout", "{e}");
    // The deadline is the connection's timer, armed by an earlier request: when it fires
    // before the current request's deadline, that request goes on (re-armed), and it is
    // cut only at its own deadline.
    let lazy = Client::new(
        1,
        Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(1000),
        },
    );
    lazy.exchange(&Request::get(&base), ctx()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Ends at least 50 ms after the timer armed by the first request fires.
    let reply = lazy
        .exchange(&Request::get(&format!("{base}/pause")), ctx())
        .await
        .unwrap();
    assert_eq!(reply.body, "paused");
    let short_again = Client::new(
        1,
        Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(300),
        },
    );
    short_again
        .exchange(&Request::get(&base), ctx())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = get_err(&short_again, &format!("{base}/slow")).await;
    assert_eq!(e.kind(), "timeout", "{e}");
    // A URL that is not http:// is refused before anything is sent.
    let e = get_err(&client, "ftp://127.0.0.1:1/x").await;
    assert_eq!(e.kind(), "transport");
    assert!(e.to_string().contains("not an http:// URL"), "{e}");
}

#[tokio::test]
async fn bodies_of_every_framing_are_read_whole_and_the_connection_kept_when_it_may_be() {
    let (port, connections) = serve();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(1, Deadlines::default());
    let get = |path: &str| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        async move { client.send(&Request::get(&url)).await.unwrap() }
    };
    // Kept: chunked (extensions and trailers skipped), an interim answer before the
    // real one, no content, a body of several reads.
    let r = get("/chunked").await;
    assert_eq!(
        (r.status.as_u16(), &r.body[..]),
        (200, &b"hello, world"[..])
    );
    let r = get("/interim").await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));
    let r = get("/no-content").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (204, 0));
    let r = get("/big").await;
    assert_eq!(r.body.len(), BIG);
    assert!(r
        .body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    let r = get("/chunked").await;
    assert_eq!(&r.body[..], b"hello, world");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one keep-alive connection"
    );
    // Closed after: a body that ends at the close, and HTTP/1.0 without keep-alive.
    let r = get("/until-close").await;
    assert_eq!(&r.body[..], b"to the end");
    assert_eq!(r.headers.get("x-a"), Some("b"));
    assert!(r.headers.contains_key("X-A"));
    let r = get("/http10").await;
    assert_eq!(&r.body[..], b"1.0!");
    assert_eq!(get("/").await.body, "connections 3");
    // A body cut short is a transport error, not a retry.
    let e = get_err(&client, &format!("{base}/cut")).await;
    assert_eq!(e.kind(), "transport", "{e}");
    assert!(e.to_string().contains("middle of an answer"), "{e}");
    assert_eq!(connections.load(Ordering::SeqCst), 3, "not sent again");
}

/// Runs `futures` concurrently on the current task's runtime; their outcomes in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[test]
fn connections_stay_with_the_runtime_they_were_opened_in() {
    let (port, connections) = serve();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(1, Deadlines::default());
    for expected in ["connections 1", "connections 2"] {
        // A runtime of its own each time, the first one gone before the second starts:
        // its idle connection (and that connection's timer) is not used by the second.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..2 {
                // Slow enough that the connection's timer is polled.
                let r = client.send(&Request::get(&format!("{base}/pause"))).await;
                assert_eq!(r.unwrap().body, "paused");
                let r = client.send(&Request::get(&base)).await.unwrap();
                assert_eq!(r.body, expected);
            }
        });
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_names_the_url_and_the_cause() {
    // A port just freed: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v2/health/ready");
    let e = Client::new(1, Deadlines::default())
        .exchange(&Request::get(&url), ctx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "transport");
    let msg = e.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn error_bodies() {
    assert_eq!(error_message(br#"{"error": "bad shape"}"#), "bad shape");
    assert_eq!(
        error_message(br#"{"code": 404, "message": "Model not found: m"}"#),
        "Model not found: m"
    );
    assert_eq!(error_message(b"Not Found\nmore"), "Not Found");
    assert_eq!(error_message(br#"{"other": 1}"#), r#"{"other": 1}"#);
    assert_eq!(error_message(b""), "(empty body)");
    assert_eq!(error_message(&[b'x'; 300]).len(), 200);
}

/// After an answer the client tells the runtime the socket is empty instead of reading
/// to find so (`Io::forget_readable`); a close that comes later is a new event, so the
/// next request still sees the connection closed before writing to it: never sent.
#[tokio::test]
async fn a_close_after_a_drained_answer_is_seen_before_the_next_request_is_written() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
        (&stream)
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        // Closed once the client has read the answer and the connection idles.
        std::thread::sleep(Duration::from_millis(50));
    });
    let req = Request::get(&format!("http://127.0.0.1:{port}/"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = conn::Conn::open("127.0.0.1", port, deadline).await.unwrap();
    let (outcome, reusable) = conn.exchange(&req.head, &req.body, deadline).await;
    assert!(matches!(outcome, Outcome::Answer(ref r) if r.body == "ok"));
    assert!(reusable, "a keep-alive answer leaves the connection open");
    server.join().unwrap();
    // The runtime sees the close while the test sleeps on it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (outcome, reusable) = conn.exchange(&req.head, &req.body, deadline).await;
    assert!(
        matches!(outcome, Outcome::Unsent(ref why) if why.contains("closed while idle")),
        "the close was not seen before writing"
    );
    assert!(!reusable);
}
