//! The fast path of [`super::decode_predictions`]: a single pass over an answer shaped
//! exactly as the Flask app writes it, `{"predictions": [[n, ...], ...]}`, with the
//! numbers going straight into the tensor's bytes.
//!
//! The harness decodes every answer inside the timed request, so what decoding costs is
//! added to every latency it reports for the Flask app. Through serde the text-CNN
//! batch-1 answer took about 2,000 instructions, most of them in the generic
//! machinery (visitors, the key lookup, number parsing built for every target type);
//! this scan takes a few hundred. It accepts a strict subset of JSON: one object with
//! one key, `predictions`, spelled without escapes, holding a list of lists of numbers
//! in JSON's number syntax, whitespace anywhere JSON allows it. Anything else (other
//! keys, escapes, nulls, a broken document) returns `None`, and the caller decodes
//! with serde, which also words the errors. Numbers are read as `f64` with the
//! standard library's correctly rounded parser, then narrowed to `f32`, as serde's `f32`
//! does.

/// What the scan found: the values as little-endian f32 bytes, row after row; the
/// number of rows; the values in each row (`None` without rows).
pub(super) struct Scanned {
    pub bytes: Vec<u8>,
    pub rows: usize,
    pub classes: Option<usize>,
}

/// Scans `body`; `None` if it is not in the subset this scan reads, or its rows differ
/// in length (serde's path then says what is wrong).
pub(super) fn predictions(body: &[u8]) -> Option<Scanned> {
    let mut s = Scanner { body, at: 0 };
    s.expect(b'{')?;
    s.expect(b'"')?;
    s.literal(b"predictions\"")?;
    s.expect(b':')?;
    s.expect(b'[')?;
    let mut out = Scanned {
        bytes: Vec::new(),
        rows: 0,
        classes: None,
    };
    if !s.eat(b']') {
        loop {
            let n = s.row(&mut out.bytes)?;
            if *out.classes.get_or_insert(n) != n {
                return None;
            }
            out.rows += 1;
            if s.eat(b']') {
                break;
            }
            s.expect(b',')?;
        }
    }
    s.expect(b'}')?;
    s.skip_ws();
    (s.at == body.len()).then_some(out)
}

/// The subset is all ASCII (every byte the scan accepts is one of `{}[]:,"`, a letter
/// of `predictions`, a number's or whitespace), so the body is never checked for UTF-8
/// as a whole: only a number that goes to the standard library's parser is made a
/// `&str`.
struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    /// Skips JSON whitespace.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.body.get(self.at) {
            self.at += 1;
        }
    }

    /// After whitespace, `byte`: consumed, and true.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let found = self.body.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    /// After whitespace, `byte`, or `None`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Exactly `text`, with no whitespace before it.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.at + text.len();
        (self.body.get(self.at..end)? == text).then(|| self.at = end)
    }

    /// One row, `[n, ...]`, appended to `bytes`; how many values it held.
    fn row(&mut self, bytes: &mut Vec<u8>) -> Option<usize> {
        self.expect(b'[')?;
        let mut n = 0;
        if self.eat(b']') {
            return Some(0);
        }
        loop {
            self.skip_ws();
            let v = self.number()?;
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
            n += 1;
            if self.eat(b']') {
                return Some(n);
            }
            self.expect(b',')?;
        }
    }

    /// A number in JSON's syntax: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    ///
    /// Its digits are gathered as they are checked. Up to 2^53 with a power of ten
    /// up to 22, the value is one exact integer times or over one exact power of ten,
    /// which IEEE arithmetic rounds correctly (Clinger's fast path): what the Flask app
    /// writes, `repr` of a float32 widened to float64, is nearly always that. Longer
    /// ones go to the standard library's parser.
    fn number(&mut self) -> Option<f64> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        self.at += usize::from(negative);
        let mut m = Mantissa::default();
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(&mut m),
            _ => return None,
        }
        let mut scale: i64 = 0;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let before = self.at;
            self.digits(&mut m);
            if self.at == before {
                return None;
            }
            scale = -((self.at - before) as i64);
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            let sign = match self.peek() {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            self.at += usize::from(sign != 0);
            let before = self.at;
            let mut e = Mantissa::default();
            self.digits(&mut e);
            if self.at == before {
                return None;
            }
            scale += if sign < 0 {
                -(e.exponent())
            } else {
                e.exponent()
            };
        }
        if let Some(v) = m.exact(scale) {
            return Some(if negative { -v } else { v });
        }
        std::str::from_utf8(&self.body[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    /// Zero or more digits, gathered into `m`.
    fn digits(&mut self, m: &mut Mantissa) {
        while let Some(d @ b'0'..=b'9') = self.peek() {
            m.push(d - b'0');
            self.at += 1;
        }
    }
}

/// Decimal digits gathered into an integer, until it would overflow.
#[derive(Default)]
struct Mantissa {
    value: u64,
    overflowed: bool,
}

impl Mantissa {
    fn push(&mut self, digit: u8) {
        match self
            .value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => self.value = v,
            None => self.overflowed = true,
        }
    }

    /// As an exponent: capped far beyond any that changes an f64.
    fn exponent(&self) -> i64 {
        if self.overflowed {
            1 << 20
        } else {
            self.value.min(1 << 20) as i64
        }
    }

    /// `value × 10^scale`, where both factors are exact f64s, so the one rounding is
    /// IEEE's correct one; `None` otherwise.
    fn exact(&self, scale: i64) -> Option<f64> {
        const POWERS: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        if self.overflowed || self.value > 1 << 53 {
            return None;
        }
        let power = *POWERS.get(scale.unsigned_abs() as usize)?;
        let v = self.value as f64;
        Some(if scale < 0 { v / power } else { v * power })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &Scanned) -> Vec<f32> {
        s.bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn reads_the_flask_apps_answers() {
        let s = predictions(br#"{"predictions": [[0.123456789, -0.987654321]]}"#).unwrap();
        assert_eq!((s.rows, s.classes), (1, Some(2)));
        assert_eq!(
            values(&s),
            vec![0.123456789f64 as f32, -0.987654321f64 as f32]
        );
        let s =
            predictions(b" {\n \"predictions\" :\t[ [1e-7 , -0, 3.5E+2 ] ,[0,1,2]] } \n").unwrap();
        assert_eq!((s.rows, s.classes), (2, Some(3)));
        assert_eq!(values(&s), vec![1e-7, -0.0, 350.0, 0.0, 1.0, 2.0]);
        let s = predictions(br#"{"predictions":[]}"#).unwrap();
        assert_eq!((s.rows, s.classes, s.bytes.len()), (0, None, 0));
        let s = predictions(br#"{"predictions":[[],[]]}"#).unwrap();
        assert_eq!((s.rows, s.classes), (2, Some(0)));
    }

    /// Everything outside the subset is left to serde: not JSON numbers, other keys or
    /// escapes, broken or trailing text, rows of different lengths.
    #[test]
    fn leaves_everything_else_to_serde() {
        for body in [
            r#"{"predictions": [[01]]}"#,
            r#"{"predictions": [[1.]]}"#,
            r#"{"predictions": [[.5]]}"#,
            r#"{"predictions": [[+1]]}"#,
            r#"{"predictions": [[1e]]}"#,
            r#"{"predictions": [[-]]}"#,
            r#"{"predictions": [[NaN]]}"#,
            r#"{"predictions": [[Infinity]]}"#,
            r#"{"predictions": [[null]]}"#,
            r#"{"predictions": [["1"]]}"#,
            r#"{"predictions": [[1,]]}"#,
            r#"{"predictions": [[1] [2]]}"#,
            r#"{"predictions": [1, 2]}"#,
            r#"{"predictions": [[1], [1, 2]]}"#,
            r#"{"predictions": [[1]], "model": "x"}"#,
            r#"{"model": "x", "predictions": [[1]]}"#,
            r#"{"predi\u0063tions": [[1]]}"#,
            r#"{"predictions": [[1]]} x"#,
            r#"{"predictions": [[1]]"#,
            r#"{"predictions": [[1]"#,
            "",
        ] {
            assert!(predictions(body.as_bytes()).is_none(), "{body}");
        }
    }

    /// Every number is read exactly as the standard library reads it, to the last bit
    /// of the f64: on the fast path and off it.
    #[test]
    fn numbers_are_correctly_rounded() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut texts = Vec::new();
        for _ in 0..20_000 {
            let f = f64::from_bits(next());
            if f.is_finite() {
                texts.push(format!("{f:e}"));
            }
            // Short decimals, the fast path's own ground: up to 17 digits, a point
            // anywhere, and sometimes an exponent.
            let digits = (next() % 10u64.pow(1 + (next() % 17) as u32)).to_string();
            let point = (next() as usize) % (digits.len() + 1);
            let mut t = if point == digits.len() {
                digits.clone()
            } else {
                format!("0.{}", &digits[point..])
            };
            if next() % 3 == 0 {
                t = format!("{t}e{}", (next() % 60) as i64 - 30);
            }
            texts.push(t);
        }
        texts.extend(
            [
                "0",
                "-0",
                "9007199254740993",
                "1e22",
                "1e23",
                "123e-22",
                "5e-324",
            ]
            .map(String::from),
        );
        for t in &texts {
            let t = t.trim_start_matches('-');
            for text in [t.to_string(), format!("-{t}")] {
                let mut s = Scanner {
                    body: text.as_bytes(),
                    at: 0,
                };
                let got = s.number().unwrap_or_else(|| panic!("{text} not read"));
                let want: f64 = text.parse().unwrap();
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{text}: {got:e} against {want:e}"
                );
                assert_eq!(s.at, text.len(), "{text}");
            }
        }
    }

    /// Where both read a document, the scan and serde agree on every value.
    #[test]
    fn agrees_with_serde() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut numbers = Vec::new();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f32::from_bits((x >> 32) as u32);
            if f.is_finite() {
                numbers.push(format!("{f}"));
                numbers.push(format!("{:e}", f as f64));
                numbers.push(format!("{}", f as f64));
            }
        }
        numbers.extend(["0", "-0", "123456789012", "1E3", "2.5e-3", "0.1"].map(String::from));
        let body = format!(r#"{{"predictions": [[{}]]}}"#, numbers.join(", "));
        let scanned = values(&predictions(body.as_bytes()).unwrap());
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        let serde: Vec<f32> = doc["predictions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(scanned.len(), numbers.len());
        for ((a, b), text) in scanned.iter().zip(&serde).zip(&numbers) {
            assert_eq!(a.to_bits(), b.to_bits(), "{text}: {a} against {b}");
        }
    }
}
