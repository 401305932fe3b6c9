//! servebench's tensor frame, the body TorchServe's handler reads and answers.
//!
//! One frame is an 8-byte little-endian length `N`, `N` bytes of JSON, then the tensors'
//! raw little-endian bytes, row-major, one after the other. The JSON takes one of two
//! forms (KServe's datatype names in both):
//! - **one tensor**, a fixture's input or logits: `{"shape": [...], "datatype": "INT64"
//!   | "FP32"}`;
//! - **several named tensors**, a user's model's inputs or outputs (`--torchscript`):
//!   `{"tensors": [{"name": "a", "shape": [...], "datatype": "FP32" | "FP16" |
//!   "INT64"}, ...]}`, the bytes following in the same order.
//!
//! `fixtures/torchserve/handler.py` is the other side: it answers a fixture with the
//! first form and a user's model with the second, its outputs in the order of the
//! model's ONNX file.

use bytes::Bytes;
use contract::{BackendError, Tensor};
use serde::{Deserialize, Serialize};

/// The header of a one-tensor frame.
#[derive(Serialize, Deserialize)]
struct Header {
    shape: Vec<usize>,
    datatype: String,
}

/// One tensor of a several-tensor frame's header.
#[derive(Serialize, Deserialize)]
struct Named {
    name: String,
    shape: Vec<usize>,
    datatype: String,
}

/// The header of either form.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyHeader {
    Many { tensors: Vec<Named> },
    One(Header),
}

/// The frame of `head` (JSON) followed by the bytes of `tensors`.
fn frame(head: &[u8], tensors: &[&Tensor]) -> Bytes {
    let data: usize = tensors.iter().map(|t| t.data.len()).sum();
    let mut body = Vec::with_capacity(8 + head.len() + data);
    body.extend_from_slice(&(head.len() as u64).to_le_bytes());
    body.extend_from_slice(head);
    for t in tensors {
        body.extend_from_slice(&t.data);
    }
    body.into()
}

/// The one-tensor frame of `input` (a fixture's request).
pub fn encode(input: &Tensor) -> Bytes {
    let head = serde_json::to_vec(&Header {
        shape: input.shape.clone(),
        datatype: input.dtype.kserve_name().into(),
    })
    .expect("plain data serialises");
    frame(&head, &[input])
}

/// The several-tensor frame of `tensors`, named, in their order (a user's model's
/// request).
pub fn encode_named(tensors: &[Tensor]) -> Bytes {
    let head = serde_json::json!({
        "tensors": tensors
            .iter()
            .map(|t| Named {
                name: t.name.clone(),
                shape: t.shape.clone(),
                datatype: t.dtype.kserve_name().into(),
            })
            .collect::<Vec<_>>(),
    });
    let head = serde_json::to_vec(&head).expect("plain data serialises");
    frame(&head, &tensors.iter().collect::<Vec<_>>())
}

/// The tensor of a one-tensor answer frame, named `name`.
pub fn decode(body: &Bytes, name: &str) -> Result<Tensor, BackendError> {
    match decode_any(body, name)?.as_slice() {
        [one] => Ok(one.clone()),
        many => Err(bad(format!(
            "has {} tensors where one was expected",
            many.len()
        ))),
    }
}

fn bad(what: String) -> BackendError {
    BackendError::Protocol(format!("TorchServe's answer {what}"))
}

/// The tensors of an answer frame of either form: a one-tensor frame's tensor is named
/// `name`; a several-tensor frame's tensors keep their own names and order.
pub fn decode_any(body: &Bytes, name: &str) -> Result<Vec<Tensor>, BackendError> {
    let len: [u8; 8] = body
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("has {} bytes, not a tensor frame", body.len())))?;
    let n = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    let end = 8usize
        .checked_add(n)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| bad(format!("claims a {n}-byte header in {} bytes", body.len())))?;
    let head: AnyHeader = serde_json::from_slice(&body[8..end])
        .map_err(|e| bad(format!("has a header that is not the frame's JSON: {e}")))?;
    let specs = match head {
        AnyHeader::One(h) => vec![Named {
            name: name.to_string(),
            shape: h.shape,
            datatype: h.datatype,
        }],
        AnyHeader::Many { tensors } => tensors,
    };
    let mut at = end;
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let dtype = adapter_kserve::codec::dtype(&spec.datatype)?;
        // The declared size is checked against what is left before anything is sliced
        // or allocated: a hostile shape costs nothing.
        let size = contract::byte_size(&spec.shape, dtype)
            .filter(|&s| s <= body.len() - at)
            .ok_or_else(|| {
                bad(format!(
                    "declares tensor {} of shape {:?} ({dtype}), more than its {} bytes",
                    spec.name,
                    spec.shape,
                    body.len() - at
                ))
            })?;
        let t = Tensor::new(spec.name, dtype, spec.shape, body.slice(at..at + size))
            .map_err(|e| bad(format!("does not fit its shape: {e}")))?;
        at += size;
        out.push(t);
    }
    if at != body.len() {
        return Err(bad(format!(
            "does not fit its shape: {} bytes follow its tensors",
            body.len() - at
        )));
    }
    Ok(out)
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
            (body.slice(..body.len() - 1), "more than its 7 bytes"),
            (
                Bytes::from([body.to_vec(), vec![0]].concat()),
                "1 bytes follow its tensors",
            ),
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

    #[test]
    fn named_frames_carry_several_tensors_of_each_dtype_in_order() {
        let tensors = vec![
            Tensor::from_f32("a", vec![2, 2], &[1.0, 2.0, 3.0, 4.0]),
            Tensor::from_i64("ids", vec![2, 1], &[7, -1]),
            Tensor::from_f16("h", vec![2, 3], &[0.5; 6]),
        ];
        let body = encode_named(&tensors);
        let head_len = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
        let head: serde_json::Value = serde_json::from_slice(&body[8..8 + head_len]).unwrap();
        assert_eq!(
            head["tensors"][1],
            serde_json::json!({"name": "ids", "shape": [2, 1], "datatype": "INT64"})
        );
        assert_eq!(body.len(), 8 + head_len + 16 + 16 + 12);
        assert_eq!(decode_any(&body, "unused").unwrap(), tensors);
        // One tensor's frame read by the general decoder is that tensor.
        let one = Tensor::from_f32("logits", vec![1, 1], &[2.0]);
        assert_eq!(decode_any(&encode(&one), "logits").unwrap(), vec![one]);
        let e = decode(&body, "logits").unwrap_err();
        assert!(e.to_string().contains("3 tensors where one"), "{e}");
        // A tensor declaring more than the frame holds, or a datatype servebench does
        // not use, is a protocol error.
        for (head, says) in [
            (
                r#"{"tensors": [{"name": "x", "shape": [4611686018427387904, 4], "datatype": "FP32"}]}"#,
                "more than its 0 bytes",
            ),
            (
                r#"{"tensors": [{"name": "x", "shape": [1], "datatype": "BYTES"}]}"#,
                "BYTES",
            ),
        ] {
            let mut b = (head.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(head.as_bytes());
            let e = decode_any(&Bytes::from(b), "x").unwrap_err();
            assert_eq!(e.kind(), "protocol");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
