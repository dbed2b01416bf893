//! Cursor pagination: `limit` (default 50, at most 1000) and an opaque `cursor` from the previous
//! page's `next_cursor`.

use super::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page (1..=1000, default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of items; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn check_limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l),
        Some(l) => Err(ApiError::invalid_query(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {l}"),
        )),
    }
}

impl PageQuery {
    /// For lists ordered by descending id: the cursor is the last id seen.
    pub fn id_cursor(&self) -> ApiResult<(i64, Option<i64>)> {
        let limit = check_limit(self.limit)?;
        let before =
            match &self.cursor {
                None => None,
                Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    ApiError::invalid_query("cursor", "not a cursor from this list")
                })?),
            };
        Ok((limit, before))
    }

    /// For positional lists: the cursor is the offset of the next item.
    pub fn offset_cursor(limit: Option<i64>, cursor: Option<&str>) -> ApiResult<(i64, i64)> {
        let limit = check_limit(limit)?;
        let offset =
            match cursor {
                None => 0,
                Some(c) => c.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                    ApiError::invalid_query("cursor", "not a cursor from this list")
                })?,
            };
        Ok((limit, offset))
    }
}

impl<T> Page<T> {
    /// From rows fetched with `limit + 1` in descending id order.
    pub fn from_id_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        id: impl Fn(&R) -> i64,
        map: impl Fn(R) -> T,
    ) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}
