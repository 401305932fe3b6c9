//! Each reported window's latency sample, kept in `results.json` compactly so that a
//! later `harness diff` can bootstrap intervals: per trial, per window, base64 of HDR
//! histogram's V2 serialisation (µs, three significant digits). A window of up to
//! [`crate::load::SAMPLE_CAP`] samples takes a few hundred bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Trials of windows of samples (µs), encoded.
pub fn encode_windows(samples: &[Vec<Vec<u64>>]) -> Vec<Vec<String>> {
    samples
        .iter()
        .map(|trial| {
            trial
                .iter()
                .map(|w| {
                    let mut h = crate::load::histogram();
                    for &x in w {
                        h.saturating_record(x);
                    }
                    let mut bytes = Vec::new();
                    V2Serializer::new()
                        .serialize(&h, &mut bytes)
                        .expect("a histogram serialises into memory");
                    STANDARD.encode(bytes)
                })
                .collect()
        })
        .collect()
}

/// Decodes [`encode_windows`]: every sample at its histogram bucket's middle value.
pub fn decode_windows(encoded: &[Vec<String>]) -> Result<Vec<Vec<Vec<u64>>>, String> {
    encoded
        .iter()
        .map(|trial| {
            trial
                .iter()
                .map(|w| {
                    let bytes = STANDARD
                        .decode(w)
                        .map_err(|e| format!("a window is not base64: {e}"))?;
                    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                        .deserialize(&mut bytes.as_slice())
                        .map_err(|e| format!("a window is not an HDR V2 histogram: {e:?}"))?;
                    let mut v = Vec::with_capacity(h.len() as usize);
                    for it in h.iter_recorded() {
                        let x = h.median_equivalent(it.value_iterated_to());
                        v.extend(std::iter::repeat_n(x, it.count_at_value() as usize));
                    }
                    Ok(v)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_trip_within_the_histograms_precision() {
        let samples = vec![
            vec![(1..=500u64).map(|x| x * 37).collect(), vec![]],
            vec![vec![5, 5, 1_000_000]],
        ];
        let enc = encode_windows(&samples);
        let dec = decode_windows(&enc).unwrap();
        assert_eq!(dec.len(), 2);
        assert_eq!(dec[0][1], Vec::<u64>::new());
        assert_eq!(dec[1][0][..2], [5, 5]);
        for (a, b) in samples[0][0].iter().zip(&dec[0][0]) {
            assert!(
                (*a as f64 - *b as f64).abs() <= *a as f64 * 1e-3,
                "{a} vs {b}"
            );
        }
        // Compact: well under 8 bytes a sample.
        assert!(enc[0][0].len() < 2000, "{}", enc[0][0].len());
        assert!(decode_windows(&[vec!["not base64!".into()]]).is_err());
    }
}
