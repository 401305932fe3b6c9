//! A `transfer-encoding: chunked` body, decoded as its bytes arrive (RFC 9112, section
//! 7.1): chunk extensions and trailers are read and dropped.

use bytes::{Buf, BytesMut};

use super::wire::{too_large, MAX_ANSWER_BYTES, MAX_HEAD_BYTES};

/// A `transfer-encoding: chunked` body being decoded as it arrives.
#[derive(Debug, Default)]
pub(super) struct Chunked {
    state: Chunk,
}

#[derive(Debug, Default, Clone, Copy)]
enum Chunk {
    /// Before a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its line end.
    DataEnd,
    /// In the trailer section after the last chunk, this many bytes of it seen.
    Trailers(usize),
}

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

impl Chunked {
    /// Decodes what `buf` holds of the body into `body`, consuming it from `buf`: `true`
    /// once the body and its trailers are complete (what follows is left in `buf`).
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        body: &mut BytesMut,
    ) -> Result<bool, String> {
        loop {
            match self.state {
                Chunk::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = if size == 0 {
                            Chunk::Trailers(0)
                        } else if body.len() as u64 + size > MAX_ANSWER_BYTES {
                            return Err(too_large());
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_CHUNK_LINE => {
                        return Ok(false)
                    }
                    _ => return Err("an answer with a bad chunk-size line".into()),
                },
                Chunk::Data(left) => {
                    let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                    match left - take as u64 {
                        0 => self.state = Chunk::DataEnd,
                        left => {
                            self.state = Chunk::Data(left);
                            return Ok(false);
                        }
                    }
                }
                Chunk::DataEnd => match (buf.first(), buf.get(1)) {
                    (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => {
                        buf.advance(if buf[0] == b'\n' { 1 } else { 2 });
                        self.state = Chunk::Size;
                    }
                    (None, _) | (Some(b'\r'), None) => return Ok(false),
                    _ => return Err("an answer with a chunk longer than its size".into()),
                },
                Chunk::Trailers(seen) => {
                    let Some(i) = buf.iter().position(|&b| b == b'\n') else {
                        if seen + buf.len() > MAX_HEAD_BYTES {
                            return Err(format!(
                                "answer trailers longer than {MAX_HEAD_BYTES} bytes"
                            ));
                        }
                        return Ok(false);
                    };
                    let last = i == 0 || (i == 1 && buf[0] == b'\r');
                    buf.advance(i + 1);
                    if last {
                        return Ok(true);
                    }
                    self.state = Chunk::Trailers(seen + i + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_in_any_pieces() {
        let wire: &[u8] =
            b"5\r\nhello\r\n1;ext=1\r\n!\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, wire.len()] {
            let (mut dec, mut buf, mut body) =
                (Chunked::default(), BytesMut::new(), BytesMut::new());
            let mut done = false;
            for part in wire.chunks(piece) {
                buf.extend_from_slice(part);
                if !done {
                    done = dec.decode(&mut buf, &mut body).unwrap();
                }
            }
            assert!(done);
            assert_eq!(&body[..], b"hello!0123456789abcdef");
            assert_eq!(&buf[..], b"NEXT");
        }
        for (bad, why) in [
            (&b"zz\r\n"[..], "chunk-size"),
            (b"2\r\nabc\r\n", "longer than its size"),
            (b"fffffffffffffff\r\n", "larger than"),
        ] {
            let e = Chunked::default()
                .decode(&mut BytesMut::from(bad), &mut BytesMut::new())
                .unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
