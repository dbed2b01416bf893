//! Extractors that turn every malformed request into the one JSON error shape, naming where.

use super::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The body's media type, lower-cased, without parameters.
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Read the whole body, mapping an over-limit body to 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            super::error::error_for_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedJson,
            format!("could not read the request body: {other}"),
        ),
    })
}

/// Parse JSON with the path of the failing value (e.g. `counts[3]`) in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let (line, column) = (inner.line(), inner.column());
        if msg.starts_with("unknown field") {
            let field = if path == "." {
                String::new()
            } else {
                path.clone()
            };
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnknownField,
                format!(
                    "{msg} (at {})",
                    if field.is_empty() {
                        "the top level"
                    } else {
                        &field
                    }
                ),
            )
            .with_details(json!({ "path": path, "line": line, "column": column }))
        } else if inner.is_data() && msg.starts_with("missing field") {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                format!("{msg} (in {path})"),
            )
            .with_details(json!({ "path": path, "line": line, "column": column }))
        } else {
            let message = if inner.is_data() {
                format!("{path}: {msg}")
            } else {
                format!("malformed JSON: {msg}")
            };
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, message)
                .with_details(json!({ "path": path, "line": line, "column": column }))
        }
    })
}

/// A JSON body: requires `Content-Type: application/json`, names the failing path.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: an empty body (with or without a content type) means `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        let headers = req.headers().clone();
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if has_type {
            require_json(&headers)?;
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!("content type '{other}' is not accepted here; send application/json"),
        )),
        None => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "missing Content-Type; send application/json",
        )),
    }
}

/// Query-string parameters with the failing parameter named.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let param = if path == "." {
                    msg.split('`').nth(1).unwrap_or("query").to_string()
                } else {
                    path
                };
                ApiError::invalid_query(param, msg)
            })
    }
}

/// A numeric id in the path, with a clear error when it is not one.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw): axum::extract::Path<Vec<(String, String)>> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid_query("path", e.body_text()))?;
        let (name, value) = raw
            .first()
            .ok_or_else(|| ApiError::invalid_query("path", "missing id"))?;
        parse_id(name, value).map(Id)
    }
}

pub fn parse_id(name: &str, value: &str) -> Result<i64, ApiError> {
    value.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQuery,
            format!("{name}: '{value}' is not a positive integer id"),
        )
        .with_details(json!({ "parameter": name }))
    })
}
