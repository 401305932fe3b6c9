//! The JSON bodies of TF Serving's REST API as the Flask app speaks them: `{"instances": [...]}` in,
//! `{"predictions": [...]}` out.

use std::fmt::Write;

use contract::{BackendError, DType, Tensor};
use serde::Deserialize;

mod scan;

/// Encodes one input tensor as `{"instances": [...]}`: one nested list per sample,
/// following the tensor's shape. Floats are written in their shortest exact form.
pub fn encode_instances(input: &Tensor) -> Result<Vec<u8>, BackendError> {
    if input.shape.is_empty() {
        return Err(BackendError::BadInput(format!(
            "tensor {} is a scalar; the predict API needs a batch dimension",
            input.name
        )));
    }
    let mut out = String::with_capacity(input.len() * 12 + 32);
    out.push_str("{\"instances\":");
    nest_tensor(&mut out, input)?;
    out.push('}');
    Ok(out.into_bytes())
}

/// Encodes the inputs of a user's model as TF Serving's columnar body,
/// `{"inputs": {"<name>": [...], ...}}`: every input by name, batch first.
pub fn encode_columnar(inputs: &[Tensor]) -> Result<Vec<u8>, BackendError> {
    let mut out = String::from("{\"inputs\":{");
    for (i, t) in inputs.iter().enumerate() {
        if t.shape.is_empty() {
            return Err(BackendError::BadInput(format!(
                "tensor {} is a scalar; the predict API needs a batch dimension",
                t.name
            )));
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&t.name).expect("a string serialises"));
        out.push(':');
        nest_tensor(&mut out, t)?;
    }
    out.push_str("}}");
    Ok(out.into_bytes())
}

/// Decodes `{"outputs": {"<name>": [...], ...}}` into one tensor per `(name, dtype)`,
/// in that order, each shaped as its nesting.
pub fn decode_columnar(
    body: &[u8],
    outputs: &[(String, DType)],
) -> Result<Vec<Tensor>, BackendError> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BackendError::Protocol(format!("predict answer is not JSON: {e}")))?;
    let mut tensors = Vec::with_capacity(outputs.len());
    for (name, dtype) in outputs {
        let v = doc
            .get("outputs")
            .and_then(|o| o.get(name))
            .ok_or_else(|| {
                BackendError::Protocol(format!("predict answer has no output {name}"))
            })?;
        let mut shape = Vec::new();
        let mut at = v;
        while let Some(a) = at.as_array() {
            shape.push(a.len());
            match a.first() {
                Some(first) => at = first,
                None => break,
            }
        }
        let mut flat = Vec::new();
        flatten(v, &mut flat);
        if flat.len() != shape.iter().product::<usize>() {
            return Err(BackendError::Protocol(format!("output {name} is ragged")));
        }
        tensors.push(match dtype {
            DType::F32 => {
                let v: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
                Tensor::from_f32(name, shape, &v)
            }
            DType::I64 => {
                let v: Vec<i64> = flat.iter().map(|&x| x as i64).collect();
                Tensor::from_i64(name, shape, &v)
            }
            DType::F16 => {
                let v: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
                Tensor::from_f16(name, shape, &v)
            }
        });
    }
    Ok(tensors)
}

fn flatten(v: &serde_json::Value, out: &mut Vec<f64>) {
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        x => out.push(x.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Appends `t`'s values as nested lists, following its shape.
fn nest_tensor(out: &mut String, t: &Tensor) -> Result<(), BackendError> {
    match t.dtype {
        DType::F32 => nest(out, &t.shape, &t.to_f32()?),
        DType::I64 => nest(out, &t.shape, &t.to_i64()?),
        DType::F16 => nest(out, &t.shape, &t.to_f64_lossy()),
    }
    Ok(())
}

fn nest<T: std::fmt::Display>(out: &mut String, shape: &[usize], values: &[T]) {
    out.push('[');
    match shape {
        [] => {}
        [_] => {
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{v}");
            }
        }
        [n, rest @ ..] => {
            let step = rest.iter().product::<usize>();
            for i in 0..*n {
                if i > 0 {
                    out.push(',');
                }
                nest(out, rest, &values[i * step..(i + 1) * step]);
            }
        }
    }
    out.push(']');
}

#[derive(Deserialize)]
struct Predictions {
    predictions: Rows,
}

/// Decodes `{"predictions": [[...], ...]}` into one `[batch, classes]` f32 tensor. The
/// values go straight into the tensor's bytes as they are parsed, with no list per row:
/// the harness times this on every answer, and a batch of 1,000 would be 1,000 lists.
/// An answer exactly as the Flask app writes it takes a single scan ([`scan`]); any
/// other goes through serde, which also says what is wrong with it.
pub fn decode_predictions(body: &[u8], batch: usize) -> Result<Tensor, BackendError> {
    let (bytes, rows, classes) = match scan::predictions(body) {
        Some(s) => (s.bytes, s.rows, s.classes),
        None => {
            let p: Predictions = serde_json::from_slice(body).map_err(|e| {
                BackendError::Protocol(format!("predict answer is not the expected JSON: {e}"))
            })?;
            (
                p.predictions.bytes,
                p.predictions.rows,
                p.predictions.classes,
            )
        }
    };
    if rows != batch {
        return Err(BackendError::Protocol(format!(
            "{rows} predictions came back for a batch of {batch}"
        )));
    }
    Tensor::new(
        fixtures::OUTPUT_NAME,
        DType::F32,
        vec![batch, classes.unwrap_or(0)],
        bytes.into(),
    )
    .map_err(|e| BackendError::Protocol(format!("predict answer: {e}")))
}

/// A list of equally long lists of numbers, read into one run of little-endian f32s.
#[derive(Default)]
struct Rows {
    bytes: Vec<u8>,
    rows: usize,
    /// Values in a row: those of the first.
    classes: Option<usize>,
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rows, D::Error> {
        d.deserialize_seq(RowsVisitor)
    }
}

struct RowsVisitor;

impl<'de> serde::de::Visitor<'de> for RowsVisitor {
    type Value = Rows;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of rows of numbers")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
        let mut rows = Rows::default();
        while seq.next_element_seed(Row(&mut rows))?.is_some() {}
        Ok(rows)
    }
}

/// One row, appended to [`Rows`].
struct Row<'a>(&'a mut Rows);

impl<'de> serde::de::DeserializeSeed<'de> for Row<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Row<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row of numbers")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let rows = self.0;
        let mut n = 0;
        while let Some(v) = seq.next_element::<f32>()? {
            rows.bytes.extend_from_slice(&v.to_le_bytes());
            n += 1;
        }
        match rows.classes {
            None => rows.classes = Some(n),
            Some(classes) if classes != n => {
                return Err(serde::de::Error::custom(
                    "prediction rows have different lengths",
                ))
            }
            Some(_) => {}
        }
        rows.rows += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_nested_instances() {
        let t = Tensor::from_f32("x", vec![2, 1, 2], &[1.0, -0.5, 0.1, 3.0]);
        let body = String::from_utf8(encode_instances(&t).unwrap()).unwrap();
        assert_eq!(body, r#"{"instances":[[[1,-0.5]],[[0.1,3]]]}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["instances"][1][0][0].as_f64().unwrap() as f32, 0.1f32);
        let t = Tensor::from_i64("ids", vec![1, 3], &[7, 0, 4999]);
        let body = String::from_utf8(encode_instances(&t).unwrap()).unwrap();
        assert_eq!(body, r#"{"instances":[[7,0,4999]]}"#);
    }

    #[test]
    fn columnar_round_trip() {
        let a = Tensor::from_f32("a", vec![2, 2], &[1.0, -0.5, 0.25, 3.0]);
        let b = Tensor::from_i64("b", vec![2, 1], &[7, 8]);
        let body = String::from_utf8(encode_columnar(&[a, b]).unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"inputs":{"a":[[1,-0.5],[0.25,3]],"b":[[7],[8]]}}"#
        );
        let answer = br#"{"outputs": {"y": [[1.5, 2]], "n": [[3]]}}"#;
        let out = decode_columnar(
            answer,
            &[("y".into(), DType::F16), ("n".into(), DType::I64)],
        )
        .unwrap();
        assert_eq!(out[0].shape, vec![1, 2]);
        assert_eq!(out[0].to_f64_lossy(), vec![1.5, 2.0]);
        assert_eq!(out[1].to_i64().unwrap(), vec![3]);
    }

    #[test]
    fn decodes_predictions_exactly() {
        let x = 0.123_456_79f32;
        let body = format!(r#"{{"predictions": [[{}, 2.0], [-1e-7, 0]]}}"#, x as f64);
        let t = decode_predictions(body.as_bytes(), 2).unwrap();
        assert_eq!(t.shape, vec![2, 2]);
        assert_eq!(t.to_f32().unwrap(), vec![x, 2.0, -1e-7, 0.0]);
        let e = decode_predictions(body.as_bytes(), 3).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        let e = decode_predictions(b"{\"predictions\": [[1], [1, 2]]}", 2).unwrap_err();
        assert!(e.to_string().contains("different lengths"), "{e}");
        // No rows, and rows that are not lists.
        let t = decode_predictions(b"{\"predictions\": []}", 0).unwrap();
        assert_eq!(t.shape, vec![0, 0]);
        assert!(decode_predictions(b"{\"predictions\": [1, 2]}", 2).is_err());
        assert!(decode_predictions(b"{\"predictions\": [[\"a\"]]}", 1).is_err());
        // Valid, but outside what the scan reads (another key, an escape): serde's way.
        let t = decode_predictions(br#"{"model": "m", "predicti\u006fns": [[0.5, 2]]}"#, 1);
        assert_eq!(t.unwrap().to_f32().unwrap(), vec![0.5, 2.0]);
    }
}
