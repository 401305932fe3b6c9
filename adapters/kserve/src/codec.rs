//! KServe v2 HTTP bodies: JSON tensors and Triton's binary tensor data extension.
//!
//! Pure functions, no I/O: the HTTP backend encodes a batch once in `prepare` and
//! decodes every answer here.
//!
//! - **JSON**: `{"inputs": [{"name", "shape", "datatype", "data": [...]}]}`, answered
//!   with the same form under `"outputs"`.
//! - **Binary**: the same JSON header, but each input carries
//!   `"parameters": {"binary_data_size": N}` and its raw little-endian bytes follow the
//!   header; the header's length goes in the `Inference-Header-Content-Length` HTTP
//!   header. `"binary_data_output": true` asks for outputs the same way.

use bytes::Bytes;
use contract::{BackendError, DType, ServerStats, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The HTTP header carrying the length of the JSON part of a binary body.
pub const HEADER_LENGTH: &str = "Inference-Header-Content-Length";

/// How tensors travel in HTTP bodies (`json` or `binary` in flags and files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum HttpBody {
    /// Tensors as JSON arrays of numbers.
    Json,
    /// Triton's binary tensor data extension.
    #[default]
    Binary,
}

impl HttpBody {
    /// `json` or `binary`, as flags and reports write it.
    pub fn name(self) -> &'static str {
        match self {
            HttpBody::Json => "json",
            HttpBody::Binary => "binary",
        }
    }
}

impl std::str::FromStr for HttpBody {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(HttpBody::Json),
            "binary" => Ok(HttpBody::Binary),
            _ => Err(format!("HTTP body {s:?} is not valid; use json or binary")),
        }
    }
}

/// An encoded request: the body and, for a binary body, the JSON header's length.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Bytes to POST.
    pub body: Bytes,
    /// `Some(n)`: binary body whose first `n` bytes are the JSON header.
    pub header_len: Option<usize>,
}

/// One input of the JSON header.
#[derive(Serialize)]
struct Input<'a> {
    name: &'a str,
    shape: &'a [usize],
    datatype: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
}

/// Values in their own width: an `f32` is written with the fewest digits that read back
/// as the same `f32` (through a JSON value it would be widened to 17 `f64` digits).
#[derive(Serialize)]
#[serde(untagged)]
enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

#[derive(Serialize)]
struct Request<'a> {
    inputs: Vec<Input<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

/// Encodes `inputs` as an infer request body.
pub fn encode(inputs: &[Tensor], body: HttpBody) -> Result<Encoded, BackendError> {
    let mut tensors = Vec::with_capacity(inputs.len());
    for t in inputs {
        let (data, parameters) = match body {
            HttpBody::Json => (
                Some(match t.dtype {
                    DType::F32 => Data::F32(t.to_f32()?),
                    DType::I64 => Data::I64(t.to_i64()?),
                    DType::F16 => Data::F64(t.to_f64_lossy()),
                }),
                None,
            ),
            HttpBody::Binary => (
                None,
                Some(BinarySize {
                    binary_data_size: t.data.len(),
                }),
            ),
        };
        tensors.push(Input {
            name: &t.name,
            shape: &t.shape,
            datatype: t.dtype.kserve_name(),
            data,
            parameters,
        });
    }
    let doc = Request {
        inputs: tensors,
        parameters: (body == HttpBody::Binary).then(|| json!({"binary_data_output": true})),
    };
    let mut bytes = serde_json::to_vec(&doc).expect("plain data serialises");
    match body {
        HttpBody::Json => Ok(Encoded {
            body: bytes.into(),
            header_len: None,
        }),
        HttpBody::Binary => {
            let header_len = bytes.len();
            for t in inputs {
                bytes.extend_from_slice(&t.data);
            }
            Ok(Encoded {
                body: bytes.into(),
                header_len: Some(header_len),
            })
        }
    }
}

#[derive(Deserialize)]
struct Response {
    outputs: Vec<Output>,
}

#[derive(Deserialize)]
struct Output {
    name: String,
    datatype: String,
    shape: Vec<usize>,
    #[serde(default)]
    data: Option<Vec<f64>>,
    #[serde(default)]
    parameters: Option<OutputParameters>,
}

#[derive(Deserialize)]
struct OutputParameters {
    #[serde(default)]
    binary_data_size: Option<usize>,
}

/// The dtype of a KServe datatype name.
pub fn dtype(name: &str) -> Result<DType, BackendError> {
    match name {
        "FP32" => Ok(DType::F32),
        "INT64" => Ok(DType::I64),
        "FP16" => Ok(DType::F16),
        _ => Err(BackendError::Protocol(format!(
            "datatype {name} is not one servebench uses (FP32, FP16, INT64)"
        ))),
    }
}

/// Decodes an infer response; `header_len` is the value of [`HEADER_LENGTH`], if the
/// server sent one (binary outputs follow the JSON header in order).
pub fn decode(body: &[u8], header_len: Option<usize>) -> Result<Vec<Tensor>, BackendError> {
    let split = header_len.unwrap_or(body.len());
    if split > body.len() {
        return Err(BackendError::Protocol(format!(
            "{HEADER_LENGTH} is {split} but the body has {} bytes",
            body.len()
        )));
    }
    let (head, mut rest) = body.split_at(split);
    let resp: Response = serde_json::from_slice(head).map_err(|e| {
        BackendError::Protocol(format!("infer response is not KServe v2 JSON: {e}"))
    })?;
    let mut out = Vec::with_capacity(resp.outputs.len());
    for o in resp.outputs {
        let dt = dtype(&o.datatype)?;
        let size = o.parameters.and_then(|p| p.binary_data_size);
        let data: Bytes = match (size, o.data) {
            (Some(n), _) => {
                if n > rest.len() {
                    return Err(BackendError::Protocol(format!(
                        "output {} claims {n} binary bytes but {} remain",
                        o.name,
                        rest.len()
                    )));
                }
                let (mine, tail) = rest.split_at(n);
                rest = tail;
                Bytes::copy_from_slice(mine)
            }
            (None, Some(values)) => match dt {
                DType::F32 => values
                    .iter()
                    .flat_map(|&v| (v as f32).to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
                DType::I64 => values
                    .iter()
                    .flat_map(|&v| (v as i64).to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
                DType::F16 => values
                    .iter()
                    .flat_map(|&v| half::f16::from_f64(v).to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            },
            (None, None) => {
                return Err(BackendError::Protocol(format!(
                    "output {} has neither data nor binary_data_size",
                    o.name
                )))
            }
        };
        out.push(
            Tensor::new(o.name, dt, o.shape, data).map_err(|e| {
                BackendError::Protocol(format!("output does not fit its shape: {e}"))
            })?,
        );
    }
    Ok(out)
}

#[derive(Deserialize)]
struct StatsDoc {
    model_stats: Vec<ModelStat>,
}

#[derive(Deserialize)]
struct ModelStat {
    name: String,
    inference_stats: InferStats,
}

#[derive(Deserialize)]
struct InferStats {
    success: Duration,
    queue: Duration,
    compute_input: Duration,
    compute_infer: Duration,
    compute_output: Duration,
}

#[derive(Deserialize)]
struct Duration {
    count: u64,
    ns: u64,
}

/// The counters of `model` (summed over its versions) from `/v2/models/<m>/stats`.
pub fn decode_stats(body: &[u8], model: &str) -> Result<ServerStats, BackendError> {
    let doc: StatsDoc = serde_json::from_slice(body).map_err(|e| {
        BackendError::Protocol(format!("statistics are not Triton's statistics JSON: {e}"))
    })?;
    let mut s = ServerStats::default();
    for m in doc.model_stats.iter().filter(|m| m.name == model) {
        let i = &m.inference_stats;
        s.requests = s.requests.saturating_add(i.success.count);
        s.queue_ns = s.queue_ns.saturating_add(i.queue.ns);
        s.compute_input_ns = s.compute_input_ns.saturating_add(i.compute_input.ns);
        s.compute_infer_ns = s.compute_infer_ns.saturating_add(i.compute_infer.ns);
        s.compute_output_ns = s.compute_output_ns.saturating_add(i.compute_output.ns);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_carry_values() {
        let t = Tensor::from_i64("input", vec![1, 3], &[1, 2, 3]);
        let e = encode(std::slice::from_ref(&t), HttpBody::Json).unwrap();
        assert!(e.header_len.is_none());
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(
            v,
            json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 3]}]})
        );
    }

    #[test]
    fn json_floats_keep_their_own_width() {
        let t = Tensor::from_f32("input", vec![1], &[0.1]);
        let e = encode(std::slice::from_ref(&t), HttpBody::Json).unwrap();
        let text = String::from_utf8(e.body.to_vec()).unwrap();
        assert!(text.contains("\"data\":[0.1]"), "{text}");
        let back = decode(
            br#"{"outputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[0.1]}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(back[0].to_f32().unwrap(), vec![0.1f32]);
    }

    #[test]
    fn binary_bodies_append_raw_bytes_after_the_header() {
        let t = Tensor::from_f32("input", vec![2], &[1.5, -2.0]);
        let e = encode(std::slice::from_ref(&t), HttpBody::Binary).unwrap();
        let n = e.header_len.unwrap();
        let v: Value = serde_json::from_slice(&e.body[..n]).unwrap();
        assert_eq!(v["inputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["parameters"]["binary_data_output"], true);
        assert_eq!(&e.body[n..], &t.data[..]);
    }

    #[test]
    fn decodes_json_and_binary_outputs() {
        let body = br#"{"model_name":"m","outputs":[{"name":"logits","datatype":"FP32","shape":[1,2],"data":[0.5,-1.0]}]}"#;
        let out = decode(body, None).unwrap();
        assert_eq!(out[0].to_f32().unwrap(), vec![0.5, -1.0]);
        assert_eq!(out[0].shape, vec![1, 2]);

        let head = br#"{"outputs":[{"name":"logits","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}"#;
        let mut body = head.to_vec();
        body.extend_from_slice(&1.0f32.to_le_bytes());
        body.extend_from_slice(&2.0f32.to_le_bytes());
        let out = decode(&body, Some(head.len())).unwrap();
        assert_eq!(out[0].to_f32().unwrap(), vec![1.0, 2.0]);

        let e = decode(&body[..body.len() - 1], Some(head.len())).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        assert!(e.to_string().contains("claims 8 binary bytes"), "{e}");
        assert_eq!(decode(b"<html>", None).unwrap_err().kind(), "protocol");
    }

    #[test]
    fn statistics() {
        let body = br#"{"model_stats":[{"name":"m","version":"1","inference_stats":{
            "success":{"count":4,"ns":100},"fail":{"count":0,"ns":0},"queue":{"count":4,"ns":8},
            "compute_input":{"count":4,"ns":12},"compute_infer":{"count":4,"ns":60},
            "compute_output":{"count":4,"ns":4}}}]}"#;
        let s = decode_stats(body, "m").unwrap();
        assert_eq!(
            s,
            ServerStats {
                requests: 4,
                queue_ns: 8,
                compute_input_ns: 12,
                compute_infer_ns: 60,
                compute_output_ns: 4
            }
        );
        assert_eq!(decode_stats(body, "other").unwrap().requests, 0);
    }

    #[test]
    fn body_names_parse() {
        assert_eq!("json".parse::<HttpBody>(), Ok(HttpBody::Json));
        assert!("xml"
            .parse::<HttpBody>()
            .unwrap_err()
            .contains("use json or binary"));
    }
}
