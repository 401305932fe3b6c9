//! servebench's tensor frame, the body TorchServe's handler reads and answers.
//!
//! One frame is an 8-byte little-endian length `N`, `N` bytes of JSON
//! `{"shape": [...], "datatype": "INT64" | "FP32"}` (KServe's datatype names), then the
//! tensor's raw little-endian bytes, row-major. Requests carry the input, answers the
//! logits. `fixtures/torchserve/handler.py` is the other side.

use bytes::Bytes;
use contract::{BackendError, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Header {
    shape: Vec<usize>,
    datatype: String,
}

/// The frame of `input`.
pub fn encode(input: &Tensor) -> Bytes {
    let head = serde_json::to_vec(&Header {
        shape: input.shape.clone(),
        datatype: input.dtype.kserve_name().into(),
    })
    .expect("plain data serialises");
    let mut body = Vec::with_capacity(8 + head.len() + input.data.len());
    body.extend_from_slice(&(head.len() as u64).to_le_bytes());
    body.extend_from_slice(&head);
    body.extend_from_slice(&input.data);
    body.into()
}

/// The tensor of an answer frame, named `name`.
pub fn decode(body: &Bytes, name: &str) -> Result<Tensor, BackendError> {
    let bad = |what: String| BackendError::Protocol(format!("TorchServe's answer {what}"));
    let len: [u8; 8] = body
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("has {} bytes, not a tensor frame", body.len())))?;
    let n = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    let end = 8usize
        .checked_add(n)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| bad(format!("claims a {n}-byte header in {} bytes", body.len())))?;
    let head: Header = serde_json::from_slice(&body[8..end])
        .map_err(|e| bad(format!("has a header that is not the frame's JSON: {e}")))?;
    let dtype = adapter_kserve::codec::dtype(&head.datatype)?;
    Tensor::new(name, dtype, head.shape, body.slice(end..))
        .map_err(|e| bad(format!("does not fit its shape: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_protocol_errors() {
        let t = Tensor::from_f32("logits", vec![1, 2], &[0.5, -1.5]);
        let body = encode(&t);
        let head_len = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
        let head: serde_json::Value = serde_json::from_slice(&body[8..8 + head_len]).unwrap();
        assert_eq!(
            head,
            serde_json::json!({"shape": [1, 2], "datatype": "FP32"})
        );
        assert_eq!(decode(&body, "logits").unwrap(), t);

        let ids = Tensor::from_i64("input", vec![1, 3], &[1, 2, 3]);
        assert_eq!(decode(&encode(&ids), "input").unwrap(), ids);

        for (bad, says) in [
            (Bytes::from_static(b"{}"), "not a tensor frame"),
            (body.slice(..body.len() - 1), "does not fit its shape"),
            (
                Bytes::from_static(&[255, 0, 0, 0, 0, 0, 0, 0, b'{']),
                "claims a 255-byte",
            ),
        ] {
            let e = decode(&bad, "logits").unwrap_err();
            assert_eq!(e.kind(), "protocol");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
