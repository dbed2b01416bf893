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
