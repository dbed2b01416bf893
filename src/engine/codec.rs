//! Model (de)serialisation: a compact versioned binary form for the store, a JSON-able form as
//! plain structs, and dimod's `BinaryQuadraticModel` convention for pairwise models.
//!
//! Every binary blob is `magic (4 bytes) | version u16 | payload | CRC-32 u32`, all little-endian;
//! the CRC (IEEE 802.3) covers everything before it.
//!
//! Model blob (`BSMD`, version 1) payload: `kind u8` (0 order, 1 full, 2 custom), `0u8`, `N u32`,
//! then for order `k u32`, for custom `count u64` and per member `len u32` + `len` spins `u32`;
//! then `J_∅ f64`, `count u64` and the couplings as `f64`, aligned with the set's members.
//! f64 array blob (`BSF8`, 1): `count u64`, values `f64`. Pattern blob (`BSPT`, 1): `N u32`,
//! `count u64`, rows of ⌈N/8⌉ bytes (bit a of byte a/8 set ⇔ σ_a = +1, padding bits zero).

use super::EngineError;
use super::interactions::{Description, FULL_MAX_SPINS, InteractionSet};
use super::model::Model;
use super::spins::Pattern;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const MODEL_MAGIC: [u8; 4] = *b"BSMD";
const F64S_MAGIC: [u8; 4] = *b"BSF8";
const PATTERNS_MAGIC: [u8; 4] = *b"BSPT";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 6;
const TRAILER_LEN: usize = 4;

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as in zlib and PNG.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn blob_error(what: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::invalid("blob", format!("{what}: {message}"))
}

fn begin(magic: [u8; 4], capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + capacity + TRAILER_LEN);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A cursor over a blob's payload whose errors say what was being read and where.
struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Check magic, version and CRC; return a reader over the payload.
    fn open(bytes: &'a [u8], magic: [u8; 4], what: &'static str) -> Result<Self, EngineError> {
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(blob_error(
                what,
                format!(
                    "truncated: {} bytes, shorter than the {}-byte header and checksum",
                    bytes.len(),
                    HEADER_LEN + TRAILER_LEN
                ),
            ));
        }
        if bytes[..4] != magic {
            return Err(blob_error(
                what,
                format!(
                    "wrong magic bytes {:02x?} (expected {:?}): not this kind of blob",
                    &bytes[..4],
                    std::str::from_utf8(&magic).unwrap_or("?")
                ),
            ));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(blob_error(
                what,
                format!("unsupported format version {version} (this build reads {VERSION})"),
            ));
        }
        let body = bytes.len() - TRAILER_LEN;
        let stored = u32::from_le_bytes([
            bytes[body],
            bytes[body + 1],
            bytes[body + 2],
            bytes[body + 3],
        ]);
        let actual = crc32(&bytes[..body]);
        if stored != actual {
            return Err(blob_error(
                what,
                format!(
                    "checksum mismatch (stored {stored:08x}, computed {actual:08x}): the blob is \
                     truncated or corrupted"
                ),
            ));
        }
        Ok(Self {
            what,
            bytes: &bytes[..body],
            pos: HEADER_LEN,
        })
    }

    fn take(&mut self, len: usize, item: &str) -> Result<&'a [u8], EngineError> {
        let remaining = self.bytes.len() - self.pos;
        if len > remaining {
            return Err(blob_error(
                self.what,
                format!(
                    "truncated at byte {} reading {item}: {len} bytes needed, {remaining} left",
                    self.pos
                ),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    fn array<const K: usize>(&mut self, item: &str) -> Result<[u8; K], EngineError> {
        let mut a = [0u8; K];
        a.copy_from_slice(self.take(K, item)?);
        Ok(a)
    }

    fn u8(&mut self, item: &str) -> Result<u8, EngineError> {
        Ok(self.array::<1>(item)?[0])
    }

    fn u32(&mut self, item: &str) -> Result<u32, EngineError> {
        Ok(u32::from_le_bytes(self.array(item)?))
    }

    fn u64(&mut self, item: &str) -> Result<u64, EngineError> {
        Ok(u64::from_le_bytes(self.array(item)?))
    }

    fn f64(&mut self, item: &str) -> Result<f64, EngineError> {
        Ok(f64::from_le_bytes(self.array(item)?))
    }

    /// A count of items of `size` bytes each that must fit in what is left (no huge allocations
    /// from a corrupted count).
    fn count(&mut self, size: usize, item: &str) -> Result<usize, EngineError> {
        let c = self.u64(item)?;
        let remaining = (self.bytes.len() - self.pos) as u64;
        if size > 0 && c > remaining / size as u64 {
            return Err(blob_error(
                self.what,
                format!("{item} = {c} needs more bytes than the {remaining} left"),
            ));
        }
        Ok(c as usize)
    }

    fn f64s(&mut self, count: usize, item: &str) -> Result<Vec<f64>, EngineError> {
        let raw = self.take(count * 8, item)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    fn end(self) -> Result<(), EngineError> {
        if self.pos != self.bytes.len() {
            return Err(blob_error(
                self.what,
                format!(
                    "{} unexpected bytes after the data",
                    self.bytes.len() - self.pos
                ),
            ));
        }
        Ok(())
    }
}

fn push_f64s(out: &mut Vec<u8>, values: &[f64]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// The binary form of a model (see the module docs for the layout).
pub fn encode(model: &Model) -> Vec<u8> {
    let set = model.set();
    let n = model.n();
    let mut out = begin(MODEL_MAGIC, 32 + 8 * set.len());
    match set.description() {
        Description::Order(k) => {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&(*k as u32).to_le_bytes());
        }
        Description::Full => {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        Description::Custom => {
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&(set.len() as u64).to_le_bytes());
            for s in set.iter() {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                for a in s.iter() {
                    out.extend_from_slice(&a.to_le_bytes());
                }
            }
        }
    }
    out.extend_from_slice(&model.offset().to_le_bytes());
    out.extend_from_slice(&(model.couplings().len() as u64).to_le_bytes());
    push_f64s(&mut out, model.couplings());
    finish(out)
}

/// Inverse of [`encode`]; errors (field `blob`) say what is wrong: truncation, checksum, version,
/// or an inconsistent description.
pub fn decode(bytes: &[u8]) -> Result<Model, EngineError> {
    const WHAT: &str = "model blob";
    let mut r = Reader::open(bytes, MODEL_MAGIC, WHAT)?;
    let kind = r.u8("description kind")?;
    let _reserved = r.u8("reserved byte")?;
    let n = r.u32("N")? as usize;
    let inconsistent = |e: EngineError| blob_error(WHAT, format!("inconsistent description: {e}"));
    let set = match kind {
        0 => {
            let k = r.u32("order")? as usize;
            // The stored couplings bound the set's size: a corrupted k cannot force a huge set.
            let limit = ((r.bytes.len() - r.pos) / 8) as u64;
            InteractionSet::order(n, k, limit).map_err(inconsistent)?
        }
        1 => InteractionSet::full(n).map_err(inconsistent)?,
        2 => {
            let count = r.count(4, "member count")?;
            let mut lists = Vec::with_capacity(count);
            for _ in 0..count {
                let len = r.u32("member size")? as usize;
                let raw = r.take(len.saturating_mul(4), "member spins")?;
                lists.push(
                    raw.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                        .collect::<Vec<_>>(),
                );
            }
            InteractionSet::custom(n, &lists).map_err(inconsistent)?
        }
        other => {
            return Err(blob_error(
                WHAT,
                format!("unknown description kind {other}"),
            ));
        }
    };
    let offset = r.f64("offset")?;
    let count = r.count(8, "coupling count")?;
    if count != set.len() {
        return Err(blob_error(
            WHAT,
            format!(
                "{count} couplings stored for a set of {} members",
                set.len()
            ),
        ));
    }
    let couplings = r.f64s(count, "couplings")?;
    r.end()?;
    Model::new(set, couplings, offset).map_err(|e| blob_error(WHAT, e))
}

/// A versioned little-endian blob of f64 values (chains' energies, checkpoints, traces).
pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    let mut out = begin(F64S_MAGIC, 8 + 8 * values.len());
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    push_f64s(&mut out, values);
    finish(out)
}

/// Inverse of [`encode_f64s`].
pub fn decode_f64s(bytes: &[u8]) -> Result<Vec<f64>, EngineError> {
    let mut r = Reader::open(bytes, F64S_MAGIC, "f64 blob")?;
    let count = r.count(8, "value count")?;
    let values = r.f64s(count, "values")?;
    r.end()?;
    Ok(values)
}

fn patterns_header(n: usize, count: usize) -> Result<Vec<u8>, EngineError> {
    if n == 0 || n > u32::MAX as usize {
        return Err(EngineError::invalid(
            "n_spins",
            format!("patterns need 1 ≤ N ≤ {}, got {n}", u32::MAX),
        ));
    }
    let mut out = begin(PATTERNS_MAGIC, 12 + count * n.div_ceil(8));
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
    Ok(out)
}

/// Bit-packed patterns of `n` spins each (datasets, minima, chain states).
pub fn encode_patterns(n: usize, patterns: &[Pattern]) -> Result<Vec<u8>, EngineError> {
    let mut out = patterns_header(n, patterns.len())?;
    for (i, p) in patterns.iter().enumerate() {
        if p.len() != n {
            return Err(EngineError::invalid(
                format!("patterns[{i}]"),
                format!("pattern has {} spins, expected {n}", p.len()),
            ));
        }
        out.extend_from_slice(&p.to_bytes());
    }
    Ok(finish(out))
}

/// Rows of ±1 spins (`spins.len()` a multiple of `n`, row-major), bit-packed in the same format
/// as [`encode_patterns`].
pub fn encode_spin_rows(n: usize, spins: &[i8]) -> Result<Vec<u8>, EngineError> {
    if n == 0 || !spins.len().is_multiple_of(n) {
        return Err(EngineError::invalid(
            "spins",
            format!("{} spins do not make whole rows of N = {n}", spins.len()),
        ));
    }
    if let Some(i) = spins.iter().position(|&s| s != 1 && s != -1) {
        return Err(EngineError::invalid(
            format!("spins[{i}]"),
            format!("a spin is −1 or +1, got {}", spins[i]),
        ));
    }
    let mut out = patterns_header(n, spins.len() / n)?;
    let row_bytes = n.div_ceil(8);
    for row in spins.chunks_exact(n) {
        let start = out.len();
        out.resize(start + row_bytes, 0);
        for (a, &s) in row.iter().enumerate() {
            if s > 0 {
                out[start + a / 8] |= 1 << (a % 8);
            }
        }
    }
    Ok(finish(out))
}

fn open_patterns(bytes: &[u8]) -> Result<(Reader<'_>, usize, usize), EngineError> {
    let mut r = Reader::open(bytes, PATTERNS_MAGIC, "pattern blob")?;
    let n = r.u32("N")? as usize;
    if n == 0 {
        return Err(blob_error("pattern blob", "N = 0"));
    }
    let count = r.count(n.div_ceil(8), "pattern count")?;
    Ok((r, n, count))
}

/// Inverse of [`encode_patterns`]: (N, patterns).
pub fn decode_patterns(bytes: &[u8]) -> Result<(usize, Vec<Pattern>), EngineError> {
    let (mut r, n, count) = open_patterns(bytes)?;
    let row_bytes = n.div_ceil(8);
    let mut patterns = Vec::with_capacity(count);
    for i in 0..count {
        let raw = r.take(row_bytes, "pattern")?;
        let p = Pattern::from_bytes(raw, n).ok_or_else(|| {
            blob_error(
                "pattern blob",
                format!("pattern {i} has bits set beyond N = {n}"),
            )
        })?;
        patterns.push(p);
    }
    r.end()?;
    Ok((n, patterns))
}

/// Inverse of [`encode_spin_rows`]: (N, row-major ±1 spins).
pub fn decode_spin_rows(bytes: &[u8]) -> Result<(usize, Vec<i8>), EngineError> {
    let (mut r, n, count) = open_patterns(bytes)?;
    let row_bytes = n.div_ceil(8);
    let mut spins = Vec::with_capacity(count * n);
    for i in 0..count {
        let raw = r.take(row_bytes, "pattern")?;
        if n % 8 != 0 && raw[row_bytes - 1] >> (n % 8) != 0 {
            return Err(blob_error(
                "pattern blob",
                format!("row {i} has bits set beyond N = {n}"),
            ));
        }
        spins.extend((0..n).map(|a| {
            if (raw[a / 8] >> (a % 8)) & 1 == 1 {
                1
            } else {
                -1
            }
        }));
    }
    r.end()?;
    Ok((n, spins))
}

/// Which description a JSON model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DescriptionKind {
    Order,
    Full,
    Custom,
}

/// One coupling J_S: the spins of S (0-based) and the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CouplingJson {
    pub spins: Vec<u32>,
    pub value: f64,
}

/// The JSON-able form of a model, E(σ) = −offset − Σ value · Π_{a∈spins} σ_a.
///
/// `order` is the k of an order-k description. For order and full descriptions a coupling left
/// out is zero; for a custom description the list of couplings is the interaction set, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelJson {
    pub n_spins: u32,
    pub description: DescriptionKind,
    #[serde(default)]
    pub order: Option<u32>,
    pub offset: f64,
    pub couplings: Vec<CouplingJson>,
}

impl ModelJson {
    /// Every coupling of the model (zeros included), in the set's member order.
    pub fn from_model(model: &Model) -> Self {
        let set = model.set();
        let (description, order) = match set.description() {
            Description::Order(k) => (DescriptionKind::Order, Some(*k as u32)),
            Description::Full => (DescriptionKind::Full, None),
            Description::Custom => (DescriptionKind::Custom, None),
        };
        Self {
            n_spins: model.n() as u32,
            description,
            order,
            offset: model.offset(),
            couplings: set
                .iter()
                .zip(model.couplings())
                .map(|(s, &value)| CouplingJson {
                    spins: s.to_vec(),
                    value,
                })
                .collect(),
        }
    }

    /// Back to a model. `max_members` bounds the size of the interaction set (an order or full
    /// description can name many couplings in a few bytes). Errors name the JSON field, e.g.
    /// `couplings[3].spins`.
    pub fn to_model(&self, max_members: u64) -> Result<Model, EngineError> {
        let n = self.n_spins as usize;
        if n == 0 {
            return Err(EngineError::invalid(
                "n_spins",
                "a model needs at least one spin",
            ));
        }
        if !self.offset.is_finite() {
            return Err(EngineError::invalid(
                "offset",
                "J_∅ must be a finite number",
            ));
        }
        if self.order.is_some() && self.description != DescriptionKind::Order {
            return Err(EngineError::invalid(
                "order",
                "order is only meaningful with description \"order\"",
            ));
        }
        let mut lists: Vec<Vec<u32>> = Vec::with_capacity(self.couplings.len());
        let mut seen: HashMap<&[u32], usize> = HashMap::new();
        for (i, c) in self.couplings.iter().enumerate() {
            if !c.value.is_finite() {
                return Err(EngineError::invalid(
                    format!("couplings[{i}].value"),
                    "a coupling must be a finite number",
                ));
            }
            lists.push(sorted_subset(
                &c.spins,
                n,
                &format!("couplings[{i}].spins"),
            )?);
        }
        for (i, l) in lists.iter().enumerate() {
            if let Some(j) = seen.insert(l.as_slice(), i) {
                return Err(EngineError::invalid(
                    format!("couplings[{i}].spins"),
                    format!("the same interaction already appears as couplings[{j}]"),
                ));
            }
        }
        let values = self.couplings.iter().map(|c| c.value);
        match self.description {
            DescriptionKind::Custom => {
                if lists.len() as u64 > max_members {
                    return Err(EngineError::invalid(
                        "couplings",
                        format!(
                            "{} couplings, above the limit of {max_members}",
                            lists.len()
                        ),
                    ));
                }
                let usize_lists: Vec<Vec<usize>> = lists
                    .iter()
                    .map(|l| l.iter().map(|&a| a as usize).collect())
                    .collect();
                let set = InteractionSet::custom(n, &usize_lists)?;
                Model::new(set, values.collect(), self.offset)
            }
            DescriptionKind::Full => {
                if n > FULL_MAX_SPINS || (1u64 << n) - 1 > max_members {
                    return Err(EngineError::invalid(
                        "n_spins",
                        format!(
                            "the full description of N = {n} spins has 2^N − 1 couplings, above \
                             the limit (N ≤ {FULL_MAX_SPINS} and at most {max_members} couplings)"
                        ),
                    ));
                }
                let set = InteractionSet::full(n)?;
                let mut j = vec![0.0; set.len()];
                for (l, v) in lists.iter().zip(values) {
                    let mask = l.iter().fold(0usize, |m, &a| m | 1 << a);
                    j[mask - 1] = v;
                }
                Model::new(set, j, self.offset)
            }
            DescriptionKind::Order => {
                let k = self.order.ok_or_else(|| {
                    EngineError::invalid("order", "description \"order\" needs the order k")
                })? as usize;
                let set = InteractionSet::order(n, k, max_members)?;
                let index = set.lookup();
                let mut j = vec![0.0; set.len()];
                for (i, (l, v)) in lists.iter().zip(values).enumerate() {
                    let Some(&m) = index.get(l) else {
                        return Err(EngineError::invalid(
                            format!("couplings[{i}].spins"),
                            format!("{} spins, above the order {k} of the model", l.len()),
                        ));
                    };
                    j[m] = v;
                }
                Model::new(set, j, self.offset)
            }
        }
    }
}

/// Validate one subset given as spin indices: non-empty, in 0..n, no repeats; sorted copy.
fn sorted_subset(spins: &[u32], n: usize, field: &str) -> Result<Vec<u32>, EngineError> {
    if spins.is_empty() {
        return Err(EngineError::invalid(
            field,
            "an interaction must name at least one spin (the constant J_∅ is `offset`)",
        ));
    }
    let mut s = spins.to_vec();
    s.sort_unstable();
    if let Some(&a) = s.iter().find(|&&a| a as usize >= n) {
        return Err(EngineError::invalid(
            field,
            format!("spin index {a} is out of range 0..{n}"),
        ));
    }
    if s.windows(2).any(|w| w[0] == w[1]) {
        return Err(EngineError::invalid(
            field,
            "a spin is repeated within one interaction",
        ));
    }
    Ok(s)
}

/// A pairwise model in dimod's `BinaryQuadraticModel` convention. For vartype `"SPIN"` dimod's
/// energy is Σ_i h_i s_i + Σ_{i<j} J_ij s_i s_j + offset, so h_i = −J_i, J_ij = −J_ij(model) and
/// offset = −J_∅. For `"BINARY"` the variables are x = (1 + s)/2 ∈ {0, 1}.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bqm {
    pub vartype: String,
    /// (variable, h).
    pub linear: Vec<(u32, f64)>,
    /// (u, v, J_uv).
    pub quadratic: Vec<(u32, u32, f64)>,
    pub offset: f64,
}

impl Bqm {
    /// dimod form (vartype SPIN) of a model whose interactions all have 1 or 2 spins; every spin
    /// appears in `linear` (zeros included) so that N survives the round trip.
    pub fn from_model(model: &Model) -> Result<Self, EngineError> {
        let set = model.set();
        if set.max_order() > 2 {
            return Err(EngineError::invalid(
                "description",
                format!(
                    "a dimod BinaryQuadraticModel holds interactions of at most 2 spins; this \
                     model has interactions of {} spins",
                    set.max_order()
                ),
            ));
        }
        let n = model.n();
        let mut h = vec![0.0; n];
        let mut quadratic = Vec::new();
        for (s, &j) in set.iter().zip(model.couplings()) {
            let mut it = s.iter();
            match (it.next(), it.next()) {
                (Some(a), None) => h[a as usize] -= j,
                (Some(a), Some(b)) => quadratic.push((a, b, -j)),
                _ => unreachable!("members are non-empty"),
            }
        }
        Ok(Self {
            vartype: "SPIN".into(),
            linear: h
                .into_iter()
                .enumerate()
                .map(|(a, v)| (a as u32, v))
                .collect(),
            quadratic,
            offset: -model.offset(),
        })
    }

    fn is_binary(&self) -> Result<bool, EngineError> {
        match self.vartype.as_str() {
            "SPIN" => Ok(false),
            "BINARY" => Ok(true),
            other => Err(EngineError::invalid(
                "vartype",
                format!("vartype must be \"SPIN\" or \"BINARY\", got {other:?}"),
            )),
        }
    }

    /// dimod's energy of a ±1 configuration (for BINARY, x_i = (1 + s_i)/2).
    pub fn energy(&self, spins: &[i8]) -> Result<f64, EngineError> {
        let binary = self.is_binary()?;
        let value = |v: u32| -> Result<f64, EngineError> {
            let s = *spins.get(v as usize).ok_or_else(|| {
                EngineError::invalid("spins", format!("variable {v} is beyond the configuration"))
            })? as f64;
            Ok(if binary { (1.0 + s) / 2.0 } else { s })
        };
        let mut e = self.offset;
        for &(v, h) in &self.linear {
            e += h * value(v)?;
        }
        for &(u, v, j) in &self.quadratic {
            e += j * value(u)? * value(v)?;
        }
        Ok(e)
    }

    /// Back to a model. Variables must be integers 0..N−1; with `n_spins` = `None`, N is inferred
    /// as the largest variable + 1 and every variable 0..N−1 must appear. Repeated linear or
    /// quadratic entries (either order of u, v) are summed, as dimod does; self-interactions are
    /// rejected. The set is order 1 without quadratic terms, order 2 when every pair appears and
    /// otherwise custom (all single spins, then the pairs in ascending order).
    pub fn to_model(&self, n_spins: Option<usize>) -> Result<Model, EngineError> {
        let binary = self.is_binary()?;
        if !self.offset.is_finite() {
            return Err(EngineError::invalid(
                "offset",
                "offset must be a finite number",
            ));
        }
        for (i, &(_, h)) in self.linear.iter().enumerate() {
            if !h.is_finite() {
                return Err(EngineError::invalid(
                    format!("linear[{i}]"),
                    "a bias must be a finite number",
                ));
            }
        }
        for (i, &(u, v, j)) in self.quadratic.iter().enumerate() {
            if !j.is_finite() {
                return Err(EngineError::invalid(
                    format!("quadratic[{i}]"),
                    "a bias must be a finite number",
                ));
            }
            if u == v {
                return Err(EngineError::invalid(
                    format!("quadratic[{i}]"),
                    format!("variable {u} cannot interact with itself"),
                ));
            }
        }
        let largest = self
            .linear
            .iter()
            .map(|&(v, _)| v)
            .chain(self.quadratic.iter().flat_map(|&(u, v, _)| [u, v]))
            .max();
        let n = match n_spins {
            Some(0) => {
                return Err(EngineError::invalid(
                    "n_spins",
                    "a model needs at least one spin",
                ));
            }
            Some(n) => {
                if let Some(i) = self.linear.iter().position(|&(v, _)| v as usize >= n) {
                    return Err(EngineError::invalid(
                        format!("linear[{i}]"),
                        format!("variable {} is out of range 0..{n}", self.linear[i].0),
                    ));
                }
                if let Some(i) = self
                    .quadratic
                    .iter()
                    .position(|&(u, v, _)| u.max(v) as usize >= n)
                {
                    let (u, v, _) = self.quadratic[i];
                    return Err(EngineError::invalid(
                        format!("quadratic[{i}]"),
                        format!("variable {} is out of range 0..{n}", u.max(v)),
                    ));
                }
                n
            }
            None => {
                let Some(largest) = largest else {
                    return Err(EngineError::invalid(
                        "n_spins",
                        "the model has no variables; give the number of spins",
                    ));
                };
                let n = largest as usize + 1;
                let mut present = vec![false; n];
                for &(v, _) in &self.linear {
                    present[v as usize] = true;
                }
                for &(u, v, _) in &self.quadratic {
                    present[u as usize] = true;
                    present[v as usize] = true;
                }
                if let Some(missing) = present.iter().position(|p| !p) {
                    return Err(EngineError::invalid(
                        "linear",
                        format!(
                            "variables must be the integers 0..N−1; {missing} is missing while \
                             {largest} is present (give n_spins to allow absent variables)"
                        ),
                    ));
                }
                n
            }
        };
        // Convert to SPIN biases: x = (1 + s)/2 turns h x into h/2 + (h/2) s and J x_u x_v into
        // J/4 (1 + s_u + s_v + s_u s_v).
        let mut h = vec![0.0; n];
        let mut offset = self.offset;
        for &(v, b) in &self.linear {
            if binary {
                h[v as usize] += b / 2.0;
                offset += b / 2.0;
            } else {
                h[v as usize] += b;
            }
        }
        let mut pairs: HashMap<(u32, u32), f64> = HashMap::new();
        for &(u, v, j) in &self.quadratic {
            let key = (u.min(v), u.max(v));
            let jj = if binary {
                h[u as usize] += j / 4.0;
                h[v as usize] += j / 4.0;
                offset += j / 4.0;
                j / 4.0
            } else {
                j
            };
            *pairs.entry(key).or_insert(0.0) += jj;
        }
        let mut pair_list: Vec<((u32, u32), f64)> = pairs.into_iter().collect();
        pair_list.sort_unstable_by_key(|&(k, _)| k);
        let all_pairs = n * (n - 1) / 2;
        let set = if pair_list.is_empty() {
            InteractionSet::order(n, 1, u64::MAX)?
        } else if pair_list.len() == all_pairs {
            InteractionSet::order(n, 2, u64::MAX)?
        } else {
            let mut lists: Vec<Vec<usize>> = (0..n).map(|a| vec![a]).collect();
            lists.extend(
                pair_list
                    .iter()
                    .map(|&((u, v), _)| vec![u as usize, v as usize]),
            );
            InteractionSet::custom(n, &lists)?
        };
        // Order-2 members are the single spins then the pairs in ascending order, like the list.
        let couplings: Vec<f64> = h
            .iter()
            .map(|&b| -b)
            .chain(pair_list.iter().map(|&(_, j)| -j))
            .collect();
        Model::new(set, couplings, -offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn f64_blob_round_trip_and_damage() {
        let v = vec![1.5, -0.0, f64::MAX, 1e-310, f64::NAN];
        let b = encode_f64s(&v);
        let back = decode_f64s(&b).unwrap();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(decode_f64s(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[10] ^= 0x40;
        let msg = decode_f64s(&bad).unwrap_err().to_string();
        assert!(msg.contains("checksum"), "{msg}");
        let mut future = b.clone();
        future[4] = 2;
        assert!(
            decode_f64s(&future)
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        assert!(decode(&b).unwrap_err().to_string().contains("magic"));
        assert!(
            decode_f64s(&[])
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn spin_rows_round_trip() {
        let rows: Vec<i8> = (0..3 * 11)
            .map(|i| if i % 3 == 0 { 1 } else { -1 })
            .collect();
        let b = encode_spin_rows(11, &rows).unwrap();
        assert_eq!(decode_spin_rows(&b).unwrap(), (11, rows.clone()));
        let (n, pats) = decode_patterns(&b).unwrap();
        assert_eq!(n, 11);
        assert_eq!(pats[1].to_spins(), rows[11..22]);
        assert_eq!(encode_patterns(11, &pats).unwrap(), b);
        assert!(encode_spin_rows(11, &rows[..30]).is_err());
        assert!(encode_spin_rows(3, &[1, 0, -1]).is_err());
    }
}
