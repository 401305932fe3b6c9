//! One keep-alive connection, and one request-answer exchange on it run in the caller's
//! task: the request (its head encoded once, then its body) goes out in one vectored
//! write, the answer comes into the connection's own buffer, and a `content-length`
//! body is handed out of that buffer without a copy. The request deadline is the
//! connection's own [`LazyTimer`], re-armed only when it fires early.

use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::chunked;
use super::wire::{self, Framing, MAX_ANSWER_BYTES};
use super::{Headers, Outcome, Response};
use crate::timer::LazyTimer;

/// Room a read has at least: a small answer arrives in one read.
const READ_SPARE: usize = 8 * 1024;
/// Most room reserved ahead of a long body's bytes: a length is only a claim.
const RESERVE_STEP: usize = 64 << 20;
/// An answer larger than this leaves its buffer to the body, and the connection takes a
/// new small one, so an idle connection never holds a large buffer.
const KEEP_BUFFER: usize = 256 * 1024;

/// A connection and its request deadline timer.
pub(super) struct Conn {
    io: Io,
    timer: LazyTimer,
}

/// The socket and the bytes read from it and not yet consumed.
struct Io {
    stream: TcpStream,
    buf: BytesMut,
    /// The last read took less than it had room for: the socket held nothing more then.
    drained: bool,
}

impl Conn {
    /// Opens a connection (TCP_NODELAY: a request is one write, never held back) for a
    /// request due by `deadline`.
    pub(super) async fn open(host: &str, port: u16, deadline: Instant) -> io::Result<Conn> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            io: Io {
                stream,
                buf: BytesMut::with_capacity(READ_SPARE),
                drained: false,
            },
            timer: LazyTimer::new(deadline),
        })
    }

    /// Sends a request (`head`, then `body`) and reads its whole answer, or
    /// [`Outcome::TimedOut`] once `deadline` passes; whether the connection may carry
    /// another request. By reference, so the caller's future holds the connection once.
    pub(super) async fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Instant,
    ) -> (Outcome, bool) {
        let Conn { io, timer } = self;
        match timer.within(deadline, io.exchange(head, body)).await {
            Some(done) => done,
            // Cut in the middle of an exchange: the connection is in no state to reuse.
            None => (Outcome::TimedOut, false),
        }
    }
}

impl Io {
    /// [`Conn::exchange`] without the deadline; whether the connection may be reused.
    async fn exchange(&mut self, head: &[u8], body: &[u8]) -> (Outcome, bool) {
        if let Some(why) = self.closed_while_idle() {
            return (Outcome::Unsent(why), false);
        }
        if let Err((written, e)) = self.write(head, body).await {
            let outcome = if written == 0 {
                Outcome::Unsent(e.to_string())
            } else if gone(&e) {
                Outcome::Closed(e.to_string())
            } else {
                Outcome::Broken(e.to_string())
            };
            return (outcome, false);
        }
        match self.read_answer().await {
            Ok((answer, keep_alive)) => {
                let reusable = keep_alive && self.buf.is_empty();
                if reusable && self.drained {
                    self.forget_readable();
                }
                if answer.body.len() > KEEP_BUFFER {
                    self.buf = BytesMut::with_capacity(READ_SPARE);
                }
                (Outcome::Answer(answer), reusable)
            }
            Err(outcome) => (outcome, false),
        }
    }

    /// Tells the runtime the socket has nothing to read, without the read that would
    /// find so (the runtime keeps a socket readable until a read finds it empty). Only
    /// after a read that drained the socket: anything that comes later (the server's
    /// close, bytes no request asked for) is a new event, so [`Io::closed_while_idle`]
    /// still sees it (and the runtime never forgets a close it has seen), and the next
    /// request pays no empty read of its own.
    fn forget_readable(&self) {
        let _ = self.stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }

    /// Why an idle connection cannot carry a request: the server closed it (or sent
    /// something unasked). Reads only when the runtime has seen the socket readable, so
    /// a live connection costs no system call.
    fn closed_while_idle(&mut self) -> Option<String> {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Ok(0) => Some("connection closed while idle".into()),
            Ok(_) => Some("the server sent bytes no request asked for".into()),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Writes `head` and `body` (one system call unless the socket's buffer fills); on
    /// failure, how many bytes went out.
    async fn write(&mut self, head: &[u8], body: &[u8]) -> Result<(), (usize, io::Error)> {
        let mut done = 0;
        while done < head.len() + body.len() {
            let wrote = if done < head.len() {
                let parts = [IoSlice::new(&head[done..]), IoSlice::new(body)];
                self.stream.write_vectored(&parts).await
            } else {
                self.stream.write(&body[done - head.len()..]).await
            };
            match wrote {
                Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) => return Err((done, e)),
            }
        }
        Ok(())
    }

    /// Reads an answer: its status, headers and whole body, and whether the server
    /// keeps the connection open.
    async fn read_answer(&mut self) -> Result<(Response, bool), Outcome> {
        let mut answered = false;
        let (head, raw) = loop {
            match wire::answer_head(&self.buf) {
                Ok(Some((len, head))) => {
                    answered = true;
                    // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                    if !head.status.is_informational() {
                        // Kept for lookups by name, sharing the buffer: no copy.
                        break (head, self.buf.split_to(len).freeze());
                    }
                    bytes::Buf::advance(&mut self.buf, len);
                    continue;
                }
                Ok(None) => {}
                Err(why) => return Err(Outcome::Broken(why)),
            }
            let before_any = !answered && self.buf.is_empty();
            match self.fill(READ_SPARE).await {
                Ok(0) if before_any => {
                    return Err(Outcome::Closed(
                        "connection closed before an answer came".into(),
                    ))
                }
                Ok(0) => return Err(cut()),
                Ok(_) => {}
                Err(e) if before_any && gone(&e) => {
                    return Err(Outcome::Closed(format!(
                        "connection closed before an answer came ({e})"
                    )))
                }
                Err(e) => return Err(Outcome::Broken(e.to_string())),
            }
        };
        let body = match head.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) => self.read_length(n).await?,
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => self.read_to_close().await?,
        };
        let answer = Response {
            status: head.status,
            headers: Headers::new(raw),
            body,
        };
        Ok((answer, head.keep_alive))
    }

    /// A body of `n` bytes, split off the buffer it was read into.
    async fn read_length(&mut self, n: u64) -> Result<Bytes, Outcome> {
        if n > MAX_ANSWER_BYTES {
            return Err(Outcome::Broken(wire::too_large()));
        }
        let n = n as usize;
        while self.buf.len() < n {
            let missing = n - self.buf.len();
            self.more(missing.min(RESERVE_STEP)).await?;
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// A chunked body, decoded.
    async fn read_chunked(&mut self) -> Result<Bytes, Outcome> {
        let (mut decoder, mut body) = (chunked::Chunked::default(), BytesMut::new());
        while !decoder
            .decode(&mut self.buf, &mut body)
            .map_err(Outcome::Broken)?
        {
            self.more(READ_SPARE).await?;
        }
        Ok(body.freeze())
    }

    /// A body that ends when the server closes the connection.
    async fn read_to_close(&mut self) -> Result<Bytes, Outcome> {
        loop {
            if self.buf.len() as u64 > MAX_ANSWER_BYTES {
                return Err(Outcome::Broken(wire::too_large()));
            }
            match self
                .fill(READ_SPARE.max(self.buf.len().min(RESERVE_STEP)))
                .await
            {
                Ok(0) => return Ok(self.buf.split().freeze()),
                Ok(_) => {}
                Err(e) => return Err(Outcome::Broken(e.to_string())),
            }
        }
    }

    /// Reads more of an answer whose end has not come.
    async fn more(&mut self, room: usize) -> Result<(), Outcome> {
        match self.fill(room).await {
            Ok(0) => Err(cut()),
            Ok(_) => Ok(()),
            Err(e) => Err(Outcome::Broken(e.to_string())),
        }
    }

    /// One read into the buffer, with at least `room` bytes of room; 0 at the end.
    async fn fill(&mut self, room: usize) -> io::Result<usize> {
        self.buf.reserve(room);
        let room = self.buf.capacity() - self.buf.len();
        let n = self.stream.read_buf(&mut self.buf).await?;
        self.drained = n < room;
        Ok(n)
    }
}

/// An answer that stopped before its end.
fn cut() -> Outcome {
    Outcome::Broken("connection closed in the middle of an answer".into())
}

/// The error says the peer closed or reset the connection.
fn gone(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}
