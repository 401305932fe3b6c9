//! TF Serving's REST bodies: the row (`instances`) and columnar (`inputs`) formats.
//!
//! Pure functions, no I/O: the REST backend encodes a batch once in `prepare` and
//! decodes every answer here.
//!
//! - **Row**: `{"signature_name": "serving_default", "instances": [x0, x1, ...]}`, one
//!   entry per sample; with one input each entry is the sample's nested array. Answered
//!   with `{"predictions": [y0, y1, ...]}` (one output: plain nested arrays; several:
//!   one object per sample).
//! - **Columnar**: `{"signature_name": "serving_default", "inputs": {"<name>": X}}`, the
//!   whole batch as one nested array per input. Answered with `{"outputs": Y}` (one
//!   output) or `{"outputs": {"<name>": Y, ...}}`.
//!
//! Numbers are written in their own width (an `f32` with the fewest digits that read
//! back as the same `f32`).

use std::fmt::Write;

use bytes::Bytes;
use contract::{BackendError, DType, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The signature every fixture model exports.
pub const SIGNATURE: &str = "serving_default";

/// TF Serving's two JSON request formats (`row` or `columnar` in flags and files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RestFormat {
    /// `{"instances": [...]}`, one entry per sample.
    #[default]
    #[cfg_attr(feature = "clap", value(alias = "instances"))]
    #[serde(alias = "instances")]
    Row,
    /// `{"inputs": {...}}`, one tensor per input.
    #[cfg_attr(feature = "clap", value(alias = "inputs"))]
    #[serde(alias = "inputs")]
    Columnar,
}

impl RestFormat {
    /// `row` or `columnar`, as flags and reports write it.
    pub fn name(self) -> &'static str {
        match self {
            RestFormat::Row => "row",
            RestFormat::Columnar => "columnar",
        }
    }
}

impl std::str::FromStr for RestFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "row" | "instances" => Ok(RestFormat::Row),
            "columnar" | "inputs" => Ok(RestFormat::Columnar),
            _ => Err(format!(
                "TF Serving REST format {s:?} is not valid; use row or columnar"
            )),
        }
    }
}

/// Writes `values` (row-major, of `shape`) as nested JSON arrays.
fn nested(out: &mut String, t: &Tensor, shape: &[usize]) -> Result<(), BackendError> {
    fn rec<T: std::fmt::Display>(out: &mut String, v: &[T], shape: &[usize]) {
        match shape.split_first() {
            None => {
                let _ = write!(out, "{}", v[0]);
            }
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                out.push('[');
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    rec(out, &v[i * step..(i + 1) * step], rest);
                }
                out.push(']');
            }
        }
    }
    match t.dtype {
        DType::F32 => {
            let v = t.to_f32()?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(BackendError::BadInput(format!(
                    "tensor {} holds a value JSON cannot carry (NaN or infinity)",
                    t.name
                )));
            }
            rec(out, &v, shape)
        }
        DType::I64 => rec(out, &t.to_i64()?, shape),
        DType::F16 => rec(out, &t.to_f64_lossy(), shape),
    }
    Ok(())
}

/// The request body of `inputs` in `format`.
pub fn encode(inputs: &[Tensor], format: RestFormat) -> Result<Bytes, BackendError> {
    let mut out = String::new();
    let _ = write!(out, "{{\"signature_name\":\"{SIGNATURE}\",");
    match format {
        RestFormat::Columnar => {
            out.push_str("\"inputs\":{");
            for (i, t) in inputs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(&t.name).expect("a string serialises"));
                out.push(':');
                nested(&mut out, t, &t.shape)?;
            }
            out.push('}');
        }
        RestFormat::Row => {
            let [t] = inputs else {
                // Several inputs would need one object per instance; the fixture models
                // have one input.
                return Err(BackendError::BadInput(format!(
                    "the row format is written for one input here, not {}",
                    inputs.len()
                )));
            };
            if t.shape.is_empty() {
                return Err(BackendError::BadInput(format!(
                    "tensor {} has no batch dimension",
                    t.name
                )));
            }
            // The batch dimension is the list of instances.
            out.push_str("\"instances\":");
            nested(&mut out, t, &t.shape)?;
        }
    }
    out.push('}');
    Ok(out.into_bytes().into())
}

/// The output tensors of an answer, decoded from `predictions` or `outputs`. A single
/// unnamed output is named `output_name`.
pub fn decode(body: &[u8], output_name: &str) -> Result<Vec<Tensor>, BackendError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| BackendError::Protocol(format!("the answer is not JSON: {e}")))?;
    if let Some(p) = doc.get("predictions") {
        let rows = p
            .as_array()
            .ok_or_else(|| BackendError::Protocol("\"predictions\" is not a list".into()))?;
        if rows.first().is_some_and(Value::is_object) {
            // Several outputs: one object per sample; gather each name's rows.
            let names: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
            return names
                .into_iter()
                .map(|n| {
                    let column: Vec<Value> = rows
                        .iter()
                        .map(|r| r.get(&n).cloned().unwrap_or(Value::Null))
                        .collect();
                    tensor(&n, &Value::Array(column), body.len())
                })
                .collect();
        }
        return Ok(vec![tensor(output_name, p, body.len())?]);
    }
    if let Some(o) = doc.get("outputs") {
        return match o.as_object() {
            Some(map) => map.iter().map(|(n, v)| tensor(n, v, body.len())).collect(),
            None => Ok(vec![tensor(output_name, o, body.len())?]),
        };
    }
    Err(BackendError::Protocol(
        "the answer has neither \"predictions\" nor \"outputs\"".into(),
    ))
}

/// A nested JSON array of numbers as an `f32` tensor.
fn tensor(name: &str, v: &Value, body_len: usize) -> Result<Tensor, BackendError> {
    let mut shape = Vec::new();
    let mut probe = v;
    while let Some(a) = probe.as_array() {
        shape.push(a.len());
        match a.first() {
            Some(x) => probe = x,
            None => break,
        }
    }
    // The shape comes from the first entry of each level only: a hostile answer can
    // declare far more values than it holds, so the size is checked before anything is
    // reserved, and the reservation never exceeds what the body can hold.
    let n = contract::byte_size(&shape, DType::F32).ok_or_else(|| {
        BackendError::Protocol(format!(
            "output {name}: shape {shape:?} is larger than {} bytes",
            contract::MAX_TENSOR_BYTES
        ))
    })? / DType::F32.size();
    let mut values = Vec::with_capacity(n.min(body_len));
    flatten(v, &shape, &mut values)
        .map_err(|why| BackendError::Protocol(format!("output {name}: {why}")))?;
    Ok(Tensor::from_f32(name, shape, &values))
}

fn flatten(v: &Value, shape: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
    match shape.split_first() {
        None => {
            let x = v.as_f64().ok_or_else(|| format!("{v} is not a number"))?;
            out.push(x as f32);
            Ok(())
        }
        Some((&n, rest)) => {
            let a = v
                .as_array()
                .filter(|a| a.len() == n)
                .ok_or_else(|| "its nested lists are not all the same length".to_string())?;
            a.iter().try_for_each(|x| flatten(x, rest, out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn encodes_both_formats() {
        let ids = Tensor::from_i64("input", vec![2, 3], &[1, 2, 3, 4, 5, 6]);
        let row = encode(std::slice::from_ref(&ids), RestFormat::Row).unwrap();
        assert_eq!(
            text(&row),
            r#"{"signature_name":"serving_default","instances":[[1,2,3],[4,5,6]]}"#
        );
        let col = encode(std::slice::from_ref(&ids), RestFormat::Columnar).unwrap();
        assert_eq!(
            text(&col),
            r#"{"signature_name":"serving_default","inputs":{"input":[[1,2,3],[4,5,6]]}}"#
        );
        let x = Tensor::from_f32("input", vec![1, 2], &[0.1, -2.5]);
        let row = encode(&[x], RestFormat::Row).unwrap();
        assert!(
            text(&row).ends_with(r#""instances":[[0.1,-2.5]]}"#),
            "{}",
            text(&row)
        );
        let nan = Tensor::from_f32("input", vec![1], &[f32::NAN]);
        assert_eq!(
            encode(&[nan], RestFormat::Row).unwrap_err().kind(),
            "bad_input"
        );
    }

    #[test]
    fn decodes_predictions_and_outputs() {
        let want = Tensor::from_f32("logits", vec![2, 2], &[0.5, 1.0, -1.0, 2.0]);
        let a = decode(br#"{"predictions": [[0.5, 1.0], [-1.0, 2.0]]}"#, "logits").unwrap();
        assert_eq!(a, vec![want.clone()]);
        let b = decode(br#"{"outputs": [[0.5, 1.0], [-1.0, 2.0]]}"#, "logits").unwrap();
        assert_eq!(b, vec![want.clone()]);
        let c = decode(
            br#"{"outputs": {"logits": [[0.5, 1.0], [-1.0, 2.0]]}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(c, vec![want.clone()]);
        let d = decode(
            br#"{"predictions": [{"logits": [0.5, 1.0]}, {"logits": [-1.0, 2.0]}]}"#,
            "x",
        )
        .unwrap();
        assert_eq!(d, vec![want]);
        for bad in [&br#"{"predictions": [[1], [1, 2]]}"#[..], b"{}", b"nope"] {
            assert_eq!(decode(bad, "logits").unwrap_err().kind(), "protocol");
        }
    }

    #[test]
    fn parses_formats() {
        assert_eq!("row".parse::<RestFormat>(), Ok(RestFormat::Row));
        assert_eq!("columnar".parse::<RestFormat>(), Ok(RestFormat::Columnar));
        assert!("csv"
            .parse::<RestFormat>()
            .unwrap_err()
            .contains("row or columnar"));
    }
}
