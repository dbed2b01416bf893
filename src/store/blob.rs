//! Versioned little-endian BLOBs for numeric arrays: a 4-byte tag naming the element type and
//! version, then the elements.

const TAG_U32_V1: &[u8; 4] = b"U4v1";
const TAG_F64_V1: &[u8; 4] = b"F8v1";

pub fn encode_u32s(values: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * values.len());
    out.extend_from_slice(TAG_U32_V1);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn decode_u32s(bytes: &[u8]) -> Option<Vec<u32>> {
    let body = bytes.strip_prefix(TAG_U32_V1.as_slice())?;
    if body.len() % 4 != 0 {
        return None;
    }
    Some(
        body.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 8 * values.len());
    out.extend_from_slice(TAG_F64_V1);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn decode_f64s(bytes: &[u8]) -> Option<Vec<f64>> {
    let body = bytes.strip_prefix(TAG_F64_V1.as_slice())?;
    if body.len() % 8 != 0 {
        return None;
    }
    Some(
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject() {
        let v = vec![0, 1, u32::MAX, 77];
        assert_eq!(decode_u32s(&encode_u32s(&v)), Some(v));
        let f = vec![0.5, -1e300, f64::MIN_POSITIVE];
        assert_eq!(decode_f64s(&encode_f64s(&f)), Some(f));
        assert_eq!(decode_u32s(b"U4v1\x01"), None);
        assert_eq!(decode_u32s(b"F8v1"), None);
    }
}
