//! The HTTP layer: thin handlers that parse, validate, call and map. One error shape; every route
//! in the OpenAPI document.

pub mod auth;
pub mod datasets;
pub mod error;
pub mod extract;
pub mod generate;
pub mod health;
pub mod jobs;
pub mod library;
pub mod metrics;
pub mod models;
pub mod pagination;
pub mod patterns;
pub mod training;

use crate::config::Config;
use crate::jobs::Jobs;
use crate::store::Db;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub jobs: Jobs,
    pub metrics: Arc<metrics::Metrics>,
    pub openapi_json: Arc<String>,
    /// Decoded models and their sampling kernels, reused across requests.
    pub models: crate::service::cache::ModelCache,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "boundstate",
        description = "Thermodynamic generative models on binary data: training, the library of free-energy minima, generation and nearest-minimum retrieval (after Y. He and V. Lubchenko, arXiv:2412.16411).",
        license(name = "MIT")
    ),
    tags(
        (name = "service", description = "Health, readiness, documentation"),
        (name = "datasets", description = "Binary data sets: distinct patterns with counts"),
        (name = "jobs", description = "Long operations: state, progress events, cancellation"),
        (name = "models", description = "Trained and imported models, couplings, energies"),
        (name = "library", description = "The library of free-energy minima: census, minima, temperature scans"),
        (name = "generation", description = "Generated patterns and nearest-minimum retrieval"),
    ),
    components(schemas(error::ErrorBody, error::ErrorCode))
)]
struct ApiDoc;

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(datasets::create_dataset, datasets::list_datasets))
        .routes(routes!(datasets::get_dataset, datasets::delete_dataset))
        .routes(routes!(datasets::list_patterns))
        .routes(routes!(datasets::list_rows))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::job_events))
        .routes(routes!(models::list_models, models::import_model))
        .routes(routes!(models::get_model, models::delete_model))
        .routes(routes!(models::get_couplings))
        .routes(routes!(models::energies))
        .routes(routes!(training::create_training_job))
        .routes(routes!(training::create_experts))
        .routes(routes!(library::create_census, library::get_census))
        .routes(routes!(library::list_minima))
        .routes(routes!(library::get_minimum))
        .routes(routes!(library::create_landscape, library::get_landscape))
        .routes(routes!(library::get_landscape_svg))
        .routes(routes!(generate::create_samples))
        .routes(routes!(generate::get_sample_set))
        .routes(routes!(generate::list_sample_patterns))
        .routes(routes!(generate::retrieve))
        .routes(routes!(generate::evaluate_retrieval))
}

/// The OpenAPI document generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    add_common_errors(&mut doc);
    doc
}

/// Every operation documents the errors that the shared layers produce: 400 for malformed ids
/// and query strings, 400/413/415 for bodies, 401/403 when API keys are configured, 503 when a
/// synchronous request runs over the time limit.
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |desc: &str| {
        ResponseBuilder::new()
            .description(desc)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let v1 = path.starts_with("/v1/");
        let ops = [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.put, true),
            (&mut item.patch, true),
        ];
        for (op, writes) in ops {
            let Some(op) = op.as_mut() else { continue };
            let r = &mut op.responses.responses;
            let mut add = |code: &str, desc: &str| {
                r.entry(code.to_string())
                    .or_insert_with(|| error(desc).into());
            };
            let params = op.parameters.as_deref().unwrap_or(&[]);
            let in_path_or_query =
                |p: &utoipa::openapi::RefOr<utoipa::openapi::path::Parameter>| match p {
                    utoipa::openapi::RefOr::T(p) => {
                        matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)
                    }
                    utoipa::openapi::RefOr::Ref(_) => true,
                };
            if params.iter().any(in_path_or_query) {
                add("400", "Malformed id or query parameter");
            }
            if op.request_body.is_some() {
                add("400", "Malformed JSON or unknown field");
                add("413", "Body over the limit");
                add("415", "Unsupported content type");
            }
            if v1 {
                add(
                    "401",
                    "API key missing or unknown (when keys are configured)",
                );
                add("503", "Over the synchronous time limit");
                if writes {
                    add("403", "The key has the read scope only");
                }
            }
        }
    }
}

/// The OpenAPI document as the pretty JSON committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().expect("the document serialises");
    s.push('\n');
    s
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application with its layers.
pub fn app(db: Db, config: Arc<Config>, jobs: Jobs, keys: auth::Keys) -> Router {
    let (router, _) = api_router().split_for_parts();
    let metrics = Arc::new(metrics::Metrics::default());
    let state = AppState {
        db,
        openapi_json: Arc::new(openapi_json()),
        config: config.clone(),
        jobs,
        metrics: metrics.clone(),
        models: Default::default(),
    };
    let policy = auth::AuthPolicy {
        keys: Arc::new(keys),
        protect_metrics: config.protect_metrics,
    };
    let timeout = Duration::from_secs(config.request_timeout_secs.max(1));
    router
        .route("/openapi.json", axum::routing::get(health::openapi_json))
        .route("/docs", axum::routing::get(health::docs))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .fallback(route_not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            request_timeout(timeout, req, next)
        }))
        .layer(axum::middleware::from_fn_with_state(policy, auth::require_key))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
                })
                .on_request(())
                .on_response(|resp: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = resp.status().as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "response");
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

/// Synchronous requests get at most `limit`; event streams are exempt.
async fn request_timeout(limit: Duration, req: Request, next: axum::middleware::Next) -> Response {
    if req.uri().path().ends_with("/events") {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            error::error_for_status(axum::http::StatusCode::SERVICE_UNAVAILABLE).into_response()
        }
    }
}

async fn route_not_found() -> Response {
    error::error_for_status(axum::http::StatusCode::NOT_FOUND).into_response()
}

/// Any error response that a layer or the router produced without our JSON shape gets it.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    error::error_for_status(status).into_response()
}
