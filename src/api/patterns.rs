//! How patterns appear in responses: a string of '0'/'1' (first spin first) unless the request
//! asks for `format=spins`, then an array of −1/+1.

use crate::engine::Pattern;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternFormat {
    #[default]
    Bits,
    Spins,
}

/// A pattern: a '0'/'1' string, or an array of −1/+1 with `format=spins`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PatternOut {
    Bits(String),
    Spins(Vec<i8>),
}

impl PatternOut {
    pub fn new(p: &Pattern, format: PatternFormat) -> Self {
        match format {
            PatternFormat::Bits => PatternOut::Bits(p.to_string()),
            PatternFormat::Spins => PatternOut::Spins(p.to_spins()),
        }
    }
}

use super::datasets::Encoding;
use super::error::{ApiError, ApiResult, ErrorCode};
use axum::http::StatusCode;
use serde_json::{Value, json};

fn bad(field: &str, message: String, column: Option<usize>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidPattern,
        format!("{field}: {message}"),
    )
    .with_details(match column {
        Some(c) => json!({ "field": field, "column": c }),
        None => json!({ "field": field }),
    })
}

/// A complete pattern from a request: a '0'/'1' string, or an array of 0/1 (`bits`) or −1/+1
/// (`spins`), of length `n`.
pub fn parse_pattern(v: &Value, n: usize, field: &str, encoding: Encoding) -> ApiResult<Pattern> {
    let (p, known) = parse_partial(v, n, field, encoding, false)?;
    debug_assert!(known.iter().all(|&k| k));
    Ok(p)
}

/// A query pattern with unknown bits: a string over '0', '1', '?', or an array of 0/1 (or −1/+1)
/// and null. Returns the pattern (unknown bits 0) and which bits are known.
pub fn parse_query(
    v: &Value,
    n: usize,
    field: &str,
    encoding: Encoding,
) -> ApiResult<(Pattern, Vec<bool>)> {
    parse_partial(v, n, field, encoding, true)
}

fn parse_partial(
    v: &Value,
    n: usize,
    field: &str,
    encoding: Encoding,
    allow_unknown: bool,
) -> ApiResult<(Pattern, Vec<bool>)> {
    let mut p = Pattern::zeros(n);
    let mut known = vec![true; n];
    let allowed = if allow_unknown { "0, 1 or ?" } else { "0 or 1" };
    match v {
        Value::String(s) => {
            let len = s.chars().count();
            if len != n {
                return Err(bad(
                    field,
                    format!("has {len} characters but the model has N = {n} spins"),
                    None,
                ));
            }
            for (a, c) in s.chars().enumerate() {
                match c {
                    '0' => {}
                    '1' => p.set(a, true),
                    '?' if allow_unknown => known[a] = false,
                    other => {
                        return Err(bad(
                            field,
                            format!("character '{other}' at column {a} is not {allowed}"),
                            Some(a),
                        ));
                    }
                }
            }
        }
        Value::Array(items) => {
            if items.len() != n {
                return Err(bad(
                    field,
                    format!("has {} values but the model has N = {n} spins", items.len()),
                    None,
                ));
            }
            for (a, x) in items.iter().enumerate() {
                match (encoding, x.as_i64(), x.is_null()) {
                    (_, _, true) if allow_unknown => known[a] = false,
                    (Encoding::Bits, Some(0), _) | (Encoding::Spins, Some(-1), _) => {}
                    (Encoding::Bits, Some(1), _) | (Encoding::Spins, Some(1), _) => p.set(a, true),
                    _ => {
                        let what = match encoding {
                            Encoding::Bits => "0 or 1",
                            Encoding::Spins => "-1 or +1",
                        };
                        let extra = if allow_unknown { " or null" } else { "" };
                        return Err(bad(
                            field,
                            format!("value {x} at column {a} is not {what}{extra}"),
                            Some(a),
                        ));
                    }
                }
            }
        }
        other => {
            return Err(bad(
                field,
                format!("expected a string of bits or an array, got {other}"),
                None,
            ));
        }
    }
    Ok((p, known))
}
