//! HTTP/1.1 on the wire, as pure functions: a URL split into the server to connect to
//! and the request target, a request head encoded once, and an answer's head read into
//! its status and how its body is delimited (RFC 9112, section 6.3).
//!
//! An answer's head is parsed by `httparse` (which checks every header's name and value)
//! and only the four headers that decide the framing and the connection are looked at;
//! the rest stay bytes in the connection's buffer until a caller asks for one by name
//! ([`super::Headers`]). Building an `http::HeaderMap` of every answer was a tenth of the
//! client's CPU, for the one header a backend reads, if any.

use std::mem::MaybeUninit;
use std::ops::Range;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;

/// Most header lines an answer may have (hyper's default, which the client had before).
pub(super) const MAX_HEADERS: usize = 100;

/// Longest answer head, and longest trailer section, in bytes (hyper's default buffer
/// limit).
pub(super) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// Largest answer body accepted: four times the largest tensor, room for a text encoding
/// of one. A body announced larger is refused before any of it is read.
pub(super) const MAX_ANSWER_BYTES: u64 = 4 * contract::MAX_TENSOR_BYTES as u64;

/// Where a URL points, as ranges of the URL: the server and the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// `host[:port]` as the URL spells it: the `Host` header and the pool's key.
    pub authority: Range<usize>,
    /// The host to connect to (an IPv6 address without its brackets).
    pub host: Range<usize>,
    /// The port to connect to (80 when the URL names none).
    pub port: u16,
    /// Path and query (without a fragment); empty for `/`.
    pub path: Range<usize>,
}

/// Splits an `http://` URL; why not, in words naming it.
pub(super) fn target(url: &str) -> Result<Target, String> {
    if let Some(i) = url.bytes().position(|b| !b.is_ascii_graphic()) {
        let c = url[i..].chars().next().unwrap_or(' ');
        return Err(format!("{url}: not a valid URL: it contains {c:?}"));
    }
    let not_http = || format!("{url}: not an http:// URL with a host");
    const SCHEME: usize = "http://".len();
    if !url
        .get(..SCHEME)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return Err(not_http());
    }
    let end = url[SCHEME..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| SCHEME + i);
    let authority = &url[SCHEME..end];
    if authority.contains('@') {
        return Err(format!(
            "{url}: not a valid URL: user info is not supported"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let close = v6.find(']').ok_or_else(not_http)?;
            (SCHEME + 1..SCHEME + 1 + close, &v6[close + 1..])
        }
        None => match authority.rfind(':') {
            Some(i) => (SCHEME..SCHEME + i, &authority[i..]),
            None => (SCHEME..end, ""),
        },
    };
    if host.is_empty() {
        return Err(not_http());
    }
    let port = match port {
        "" | ":" => 80,
        p => p
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{url}: not a valid URL: the port is not a number"))?,
    };
    let path = end..url.find('#').unwrap_or(url.len());
    Ok(Target {
        authority: SCHEME..end,
        host,
        port,
        path,
    })
}

/// The head of a request for `target` of `url`: request line, `host`, and for a request
/// with a body its `content-type` and `content-length`, ending with the empty line.
pub(super) fn head(
    method: &str,
    url: &str,
    target: &Target,
    body: Option<(&str, usize)>,
) -> Vec<u8> {
    let path = &url[target.path.clone()];
    let mut h = Vec::with_capacity(96 + path.len());
    h.extend_from_slice(method.as_bytes());
    h.push(b' ');
    if !path.starts_with('/') {
        h.push(b'/');
    }
    h.extend_from_slice(path.as_bytes());
    h.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    h.extend_from_slice(url[target.authority.clone()].as_bytes());
    h.extend_from_slice(b"\r\n");
    if let Some((content_type, length)) = body {
        h.extend_from_slice(b"content-type: ");
        h.extend_from_slice(content_type.as_bytes());
        h.extend_from_slice(b"\r\ncontent-length: ");
        h.extend_from_slice(length.to_string().as_bytes());
        h.extend_from_slice(b"\r\n");
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// `head` with header `name` set to `value`: any line of that name is replaced.
pub(super) fn set_header(head: &[u8], name: &HeaderName, value: &HeaderValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + name.as_str().len() + value.len() + 4);
    let lines = head.strip_suffix(b"\r\n").unwrap_or(head);
    for (i, line) in lines.split_inclusive(|&b| b == b'\n').enumerate() {
        let named = line
            .split(|&b| b == b':')
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_str().as_bytes()));
        if i == 0 || !named {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// An answer's head.
#[derive(Debug)]
pub(super) struct Head {
    pub status: StatusCode,
    pub framing: Framing,
    /// The connection may carry another request after this answer.
    pub keep_alive: bool,
}

/// The answer head at the start of `buf` and its length in bytes; `None` while it is
/// incomplete; why it is not an answer we read.
pub(super) fn answer_head(buf: &[u8]) -> Result<Option<(usize, Head)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Room for the few headers servers send, left uninitialised (httparse writes each
    // slot it fills); a head with more is parsed again with room for all that are
    // accepted.
    let mut few = [const { MaybeUninit::uninit() }; FEW_HEADERS];
    match parse_head(buf, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {}
        other => return other.map_err(|e| format!("not an HTTP/1.x answer ({e})"))?,
    }
    let mut all = Vec::with_capacity(MAX_HEADERS);
    all.resize_with(MAX_HEADERS, MaybeUninit::uninit);
    match parse_head(buf, &mut all) {
        Err(httparse::Error::TooManyHeaders) => {
            Err(format!("an answer with more than {MAX_HEADERS} headers"))
        }
        other => other.map_err(|e| format!("not an HTTP/1.x answer ({e})"))?,
    }
}

/// Headers an answer head is first parsed with room for.
const FEW_HEADERS: usize = 16;

/// [`answer_head`] with room for `slots.len()` headers; httparse's error, or ours.
fn parse_head<'b>(
    buf: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Result<Option<(usize, Head)>, String>, httparse::Error> {
    let mut answer = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut answer,
        buf,
        slots,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Ok(Err(format!(
                "an answer head longer than {MAX_HEAD_BYTES} bytes"
            )))
        }
        Ok(httparse::Status::Partial) => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    Ok(head_of(len, &answer))
}

/// What the parsed `answer` (of `len` bytes) says.
fn head_of(len: usize, answer: &httparse::Response) -> Result<Option<(usize, Head)>, String> {
    let code = answer.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| format!("an answer of status {code}"))?;
    let (mut length, mut encoded, mut chunked) = (None, false, false);
    let (mut close, mut keep, mut upgrade) = (false, false, false);
    for h in answer.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = length_value(h.value).ok_or_else(|| {
                format!(
                    "an answer header {:?} with a value that is not a length",
                    h.name
                )
            })?;
            if length.is_some_and(|l| l != n) {
                return Err("an answer with two different content-lengths".into());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding applied is the one that delimits the body.
            encoded = true;
            chunked = tokens(h.value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close"));
            keep |= tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    if code == 101 || upgrade && status.is_informational() {
        return Err("an answer switching protocols, which was not asked for".into());
    }
    let framing = if status.is_informational() || code == 204 || code == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if encoded {
        Framing::UntilClose
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    let http11 = answer.version == Some(1);
    let keep_alive = !close
        && (http11 || keep)
        && framing != Framing::UntilClose
        // Both a length and a coding: the length may lie (RFC 9112, 6.3).
        && !(encoded && length.is_some());
    Ok(Some((
        len,
        Head {
            status,
            framing,
            keep_alive,
        },
    )))
}

/// A `content-length` value (`1*DIGIT`, RFC 9110 8.6, whitespace around it allowed);
/// `None` for anything else or a number past `u64`.
fn length_value(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
}

/// The comma-separated tokens of a header value, without surrounding whitespace.
pub(super) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// The value of the first header named `name` (any case) in the answer head `raw` (as
/// `httparse` accepted it: status line, header lines, empty line), without surrounding
/// whitespace.
pub(super) fn find_header<'a>(raw: &'a [u8], name: &str) -> Option<&'a [u8]> {
    raw.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// Why an answer is refused for its size.
pub(super) fn too_large() -> String {
    format!("an answer larger than {MAX_ANSWER_BYTES} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, String, u16, String) {
        let t = target(url).unwrap();
        (
            url[t.authority].to_string(),
            url[t.host].to_string(),
            t.port,
            url[t.path].to_string(),
        )
    }

    #[test]
    fn urls_split_into_server_and_target() {
        let s = |a: &str, h: &str, p, path: &str| (a.into(), h.into(), p, path.into());
        assert_eq!(
            split("http://127.0.0.1:8000/v1/models/m:predict"),
            s("127.0.0.1:8000", "127.0.0.1", 8000, "/v1/models/m:predict")
        );
        assert_eq!(split("http://h"), s("h", "h", 80, ""));
        assert_eq!(split("HTTP://h:81?q=1#frag"), s("h:81", "h", 81, "?q=1"));
        assert_eq!(
            split("http://[::1]:8500/x"),
            s("[::1]:8500", "::1", 8500, "/x")
        );
        assert_eq!(split("http://[::1]/"), s("[::1]", "::1", 80, "/"));
        for (bad, why) in [
            ("ftp://h:1/x", "not an http:// URL"),
            ("http:///x", "not an http:// URL"),
            ("http://:80/x", "not an http:// URL"),
            ("http://h:x/", "port"),
            ("http://h:99999/", "port"),
            ("http://h/a b", "contains ' '"),
            ("http://h/\r\nx: y", "contains '\\r'"),
            ("http://u@h/", "user info"),
        ] {
            let e = target(bad).unwrap_err();
            assert!(e.contains(why) && e.starts_with(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn request_heads_are_encoded_once_with_their_headers() {
        let url = "http://127.0.0.1:8000?x=1";
        let t = target(url).unwrap();
        let h = head("GET", url, &t, None);
        assert_eq!(h, b"GET /?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8000\r\n\r\n");
        let url = "http://h:1/p";
        let h = head(
            "POST",
            url,
            &target(url).unwrap(),
            Some(("application/json", 12)),
        );
        let want = "POST /p HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&h), want);
        let name = HeaderName::from_static("content-type");
        let h = set_header(&h, &name, &HeaderValue::from_static("text/plain"));
        let name = HeaderName::from_static("x-extra");
        let h = set_header(&h, &name, &HeaderValue::from(7));
        let want = "POST /p HTTP/1.1\r\nhost: h:1\r\ncontent-length: 12\r\ncontent-type: text/plain\r\nx-extra: 7\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&h), want);
    }

    fn parse(text: &str) -> Result<Option<(usize, Head)>, String> {
        answer_head(text.as_bytes())
    }

    #[test]
    fn answer_heads_say_how_the_body_is_delimited_and_whether_to_keep_the_connection() {
        let (n, h) = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!((n, h.status.as_u16()), (46, 200));
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
                Framing::Length(5),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
                Framing::Length(5),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\nConnection: Keep-Alive\r\n\r\n",
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                Framing::UntilClose,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose, false),
            ("HTTP/1.1 204 No Content\r\n\r\n", Framing::Empty, true),
            (
                "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
                Framing::Empty,
                true,
            ),
            ("HTTP/1.1 100 Continue\r\n\r\n", Framing::Empty, true),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n",
                Framing::Length(3),
                true,
            ),
        ];
        for (text, framing, keep) in cases {
            let (_, h) = parse(text).unwrap().unwrap();
            assert_eq!((h.framing, h.keep_alive), (framing, keep), "{text}");
        }
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        let (_, h) = parse("HTTP/1.1 200 OK\r\ncontent-length:  18446744073709551615 \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(u64::MAX));
        assert!(parse("").unwrap().is_none());
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        for (text, why) in [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
                "two different",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "not a length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
                "not a length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5 5\r\n\r\n",
                "not a length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\n",
                "not a length",
            ),
            ("HTTP/1.1 200 OK\r\ncontent-length:\r\n\r\n", "not a length"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
            (
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
                "switching protocols",
            ),
            (
                &format!("HTTP/1.1 200 OK\r\n{many}\r\n"),
                "more than 100 headers",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        let endless = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(parse(&endless).unwrap_err().contains("longer than"));
    }
}
