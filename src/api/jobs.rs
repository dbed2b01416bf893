//! `/v1/jobs`: every long operation, its state, progress, events and cancellation.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{Id, QueryParams};
use super::pagination::{Page, check_limit};
use crate::jobs::{JobProgress, JobStatus};
use crate::store::{self, jobs::JobRow};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

/// The kinds of job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Training,
    Census,
    Landscape,
    Sampling,
    Evaluation,
    Experts,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Training => "training",
            JobKind::Census => "census",
            JobKind::Landscape => "landscape",
            JobKind::Sampling => "sampling",
            JobKind::Evaluation => "evaluation",
            JobKind::Experts => "experts",
        }
    }
}

/// A webhook delivery attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub attempt: u32,
    pub at: String,
    /// HTTP status of the receiver, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    pub id: i64,
    pub kind: String,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The validated request.
    #[schema(value_type = Object)]
    pub params: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<i64>,
    /// The model the job works on, or the model a training job produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<i64>,
    /// What the job produced (kind-specific), once succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed, was cancelled or interrupted; or a note on a resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<JobProgress>,
    /// Times it started running (more than 1 after a resume).
    pub attempts: i64,
    pub cancel_requested: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    pub deliveries: Vec<Delivery>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl From<JobRow> for JobDto {
    fn from(r: JobRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            status: JobStatus::parse(&r.status).unwrap_or(JobStatus::Failed),
            name: r.name,
            params: serde_json::from_str(&r.params).unwrap_or(Value::Null),
            dataset_id: r.dataset_id,
            model_id: r.model_id,
            result: r.result.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.error,
            progress: r.progress.and_then(|s| serde_json::from_str(&s).ok()),
            attempts: r.attempts,
            cancel_requested: r.cancel_requested,
            checkpoint_at: r.checkpoint_at,
            callback_url: r.callback_url,
            deliveries: r
                .deliveries
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    #[param(inline)]
    pub status: Option<JobStatus>,
    #[param(inline)]
    pub kind: Option<JobKind>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// List jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(JobsQuery),
    responses((status = 200, body = Page<JobDto>), (status = 400, body = super::error::ErrorBody))
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<JobsQuery>,
) -> ApiResult<Json<Page<JobDto>>> {
    let (limit, before) = super::pagination::PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .id_cursor()?;
    let _ = check_limit(q.limit)?;
    let rows = store::jobs::list(
        &state.db,
        q.status.map(JobStatus::as_str),
        q.kind.map(JobKind::as_str),
        limit + 1,
        before,
    )
    .await?;
    Ok(Json(Page::from_id_rows(
        rows,
        limit,
        |r| r.id,
        JobDto::from,
    )))
}

pub async fn fetch(state: &AppState, id: i64) -> ApiResult<JobRow> {
    store::jobs::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::JobNotFound, "job", id))
}

/// One job.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobDto), (status = 404, body = super::error::ErrorBody))
)]
pub async fn get_job(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<JobDto>> {
    Ok(Json(fetch(&state, id).await?.into()))
}

/// Cancel a queued or running job. Answers once the job has stopped (or after 10 s with the
/// job still stopping); 409 if it had already finished.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 202, description = "Cancellation requested; `status` shows whether it has stopped", body = JobDto),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "Already finished", body = super::error::ErrorBody)
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    Id(id): Id,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    let row = fetch(&state, id).await?;
    let status = JobStatus::parse(&row.status).unwrap_or(JobStatus::Failed);
    if status.is_terminal() {
        return Err(ApiError::conflict(
            ErrorCode::JobFinished,
            format!(
                "job {id} has already finished ({}); there is nothing to cancel",
                row.status
            ),
        )
        .with_details(json!({ "id": id, "status": row.status })));
    }
    let mut events = state.jobs.subscribe();
    state.jobs.cancel(id).await?;
    let wait = async {
        loop {
            if let Ok(Some(r)) = store::jobs::get(&state.db, id).await
                && JobStatus::parse(&r.status).is_some_and(JobStatus::is_terminal)
            {
                return;
            }
            match events.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    Ok((StatusCode::ACCEPTED, Json(fetch(&state, id).await?.into())))
}

/// Server-sent events: `state` (the whole job) first, `progress` while it runs, and a final
/// `state` when it reaches a terminal state; then the stream ends.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "text/event-stream of `state` events (data: the job) and `progress` events (data: its progress), each a JSON object", content_type = "text/event-stream", body = Object),
        (status = 404, body = super::error::ErrorBody)
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    Id(id): Id,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let rx = state.jobs.subscribe();
    let row = fetch(&state, id).await?;
    let done = JobStatus::parse(&row.status).is_some_and(JobStatus::is_terminal);
    let first = state_event(row);
    struct S {
        rx: tokio::sync::broadcast::Receiver<crate::jobs::JobEvent>,
        state: AppState,
        id: i64,
        first: Option<Event>,
        done: bool,
    }
    let init = S {
        rx,
        state,
        id,
        first: Some(first),
        done,
    };
    let stream = futures_util::stream::unfold(init, |mut s| async move {
        if let Some(e) = s.first.take() {
            return Some((Ok(e), s));
        }
        if s.done {
            return None;
        }
        loop {
            match s.rx.recv().await {
                Ok(ev) if ev.kind == "shutdown" => return None,
                Ok(ev) if ev.job_id != s.id => continue,
                Ok(ev) if ev.kind == "progress" => {
                    let e = Event::default().event("progress").data(ev.data.to_string());
                    return Some((Ok(e), s));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    let Ok(Some(row)) = store::jobs::get(&s.state.db, s.id).await else {
                        return None;
                    };
                    let status = JobStatus::parse(&row.status).unwrap_or(JobStatus::Failed);
                    if status.is_terminal() {
                        s.done = true;
                        return Some((Ok(state_event(row)), s));
                    }
                    if status == JobStatus::Running {
                        return Some((Ok(state_event(row)), s));
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn state_event(row: JobRow) -> Event {
    let dto = JobDto::from(row);
    Event::default()
        .event("state")
        .data(serde_json::to_string(&dto).expect("job serialises"))
}

/// What a new job is about.
pub struct Submission<'a> {
    pub kind: JobKind,
    pub name: Option<&'a str>,
    /// The validated, fully resolved request (what the runner reads back).
    pub params: &'a Value,
    pub dataset_id: Option<i64>,
    pub model_id: Option<i64>,
    pub callback_url: Option<&'a str>,
}

/// Queue a job: 429 with Retry-After when the queue is full, else insert it as `queued`, start
/// it and answer 202 with the job.
pub async fn submit(state: &AppState, s: Submission<'_>) -> ApiResult<(StatusCode, Json<JobDto>)> {
    if let Some(url) = s.callback_url {
        crate::service::webhooks::validate_url(url)
            .map_err(|m| ApiError::invalid_field("callback_url", m))?;
    }
    if let Err(retry) = state.jobs.has_capacity() {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::QueueFull,
            format!(
                "{} jobs are waiting (BOUNDSTATE_MAX_QUEUED_JOBS); retry in {retry} s",
                state.jobs.queue_length()
            ),
        );
        e.retry_after = Some(retry);
        return Err(e);
    }
    let params = s.params.to_string();
    let mut tx = state.db.begin_write().await?;
    let row = store::jobs::insert(
        &mut tx,
        &store::jobs::NewJob {
            kind: s.kind.as_str(),
            name: s.name,
            params: &params,
            dataset_id: s.dataset_id,
            model_id: s.model_id,
            callback_url: s.callback_url,
        },
    )
    .await?;
    tx.commit().await?;
    state.jobs.start(row.id);
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}
