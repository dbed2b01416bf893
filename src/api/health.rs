//! Liveness, readiness, the OpenAPI document and its docs page.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = super::error::ErrorBody))
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.db.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness probe failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the database does not answer",
        )
    })?;
    Ok(Json(Health {
        status: "ready",
        version: env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.as_ref().clone(),
    )
}

pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
