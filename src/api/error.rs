//! One error type for every failure, one JSON shape:
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`. 5xx bodies never leak internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Machine-readable error codes (a closed set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, or a JSON value has the wrong type.
    MalformedJson,
    /// A field the endpoint does not know.
    UnknownField,
    /// A field is missing or out of its domain.
    InvalidField,
    /// A query-string parameter is missing, malformed or out of range.
    InvalidQuery,
    /// A pattern has a character or value that is not a bit (or spin).
    InvalidPattern,
    /// Rows of different lengths.
    RaggedRows,
    /// Counts that are not positive integers or do not match the rows.
    InvalidCounts,
    /// No patterns at all.
    EmptyDataset,
    /// N above the configured maximum.
    TooManySpins,
    /// More rows than the configured maximum.
    TooManyRows,
    /// The request asks for more work than a cap allows.
    WorkLimitExceeded,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The content type is not one the endpoint accepts.
    UnsupportedMediaType,
    /// The request cannot be processed as asked (e.g. N above the exact-enumeration cap).
    Unprocessable,
    DatasetNotFound,
    ModelNotFound,
    JobNotFound,
    MinimumNotFound,
    SampleSetNotFound,
    /// No census exists yet for the model.
    CensusNotFound,
    /// No landscape scan exists yet for the model.
    LandscapeNotFound,
    /// No such route.
    RouteNotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// A dataset still used by a model cannot be deleted.
    DatasetInUse,
    /// A model still used by a mixture or a running job cannot be deleted.
    ModelInUse,
    /// The job has already reached a terminal state.
    JobFinished,
    /// The job queue is full; retry later.
    QueueFull,
    /// Authentication is required (missing or unknown key).
    Unauthorized,
    /// The key's scope does not allow this request.
    Forbidden,
    /// The request took longer than the synchronous limit.
    Timeout,
    /// The database does not answer.
    Unavailable,
    /// Something failed on the server; the log has the details.
    Internal,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Where the problem is (field, row, column, limits), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 422 naming the field that is wrong.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            format!("{field}: {message}"),
        )
        .with_details(json!({ "field": field }))
    }

    /// 422 `work_limit_exceeded`: `what` (a formula in request fields) came to `work` spin
    /// updates, above `cap` (named by `setting`); `field` is the one to lower.
    pub fn work_limit(what: &str, work: u128, cap: u64, setting: &str, field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::WorkLimitExceeded,
            format!("{what} = {work} spin updates exceeds the cap of {cap} ({setting})"),
        )
        .with_details(json!({ "field": field, "work": work as f64, "cap": cap }))
    }

    pub fn invalid_query(param: impl Into<String>, message: impl Into<String>) -> Self {
        let param = param.into();
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQuery,
            format!("{param}: {message}"),
        )
        .with_details(json!({ "parameter": param }))
    }

    pub fn not_found(code: ErrorCode, what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("{what} {id} does not exist"),
        )
        .with_details(json!({ "id": id.to_string() }))
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 with a generic message; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(format!("database: {e}"))
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(e: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError;
        match e {
            EngineError::Invalid { field, message } => ApiError::invalid_field(field, message),
            EngineError::Interrupted => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the computation was interrupted (server shutting down)",
            ),
            EngineError::Numerical(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::Unprocessable,
                format!("numerical failure: {m}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// The JSON error body for a status produced outside the handlers (routing, layers).
pub fn error_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(status, ErrorCode::RouteNotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the configured limit (BOUNDSTATE_BODY_LIMIT)",
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout,
            "the request took longer than the synchronous limit (BOUNDSTATE_REQUEST_TIMEOUT)",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            ErrorCode::UnsupportedMediaType,
            "unsupported content type",
        ),
        s if s.is_server_error() => ApiError::internal(format!("status {s} from a layer")),
        s => ApiError::new(
            s,
            ErrorCode::InvalidField,
            s.canonical_reason().unwrap_or("bad request"),
        ),
    }
}

/// `v` within [lo, hi], or 422 naming the field.
pub fn in_range(v: usize, field: &str, lo: usize, hi: usize) -> ApiResult<usize> {
    if v < lo || v > hi {
        return Err(ApiError::invalid_field(
            field,
            format!("must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(v)
}
