//! `GET /metrics` in the Prometheus text format: requests by route and status, latency
//! histograms, jobs by kind and state, queue length, compute pool, spin-flip attempts, database size.

use super::AppState;
use crate::engine::control::SPIN_FLIP_ATTEMPTS;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and latency histograms, by route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    attempts_window: Mutex<Option<(Instant, u64, f64)>>,
}

impl Metrics {
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .expect("lock")
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let mut lat = self.latency.lock().expect("lock");
        let h = lat.entry(route.to_owned()).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
    }

    /// Attempts per second since the previous scrape (scrapes less than a second apart reuse it).
    fn attempts_rate(&self, total: u64) -> f64 {
        let mut w = self.attempts_window.lock().expect("lock");
        let now = Instant::now();
        let rate = match *w {
            Some((t, _, rate)) if now.duration_since(t).as_secs_f64() < 1.0 => return rate,
            Some((t, n0, _)) => {
                total.saturating_sub(n0) as f64 / now.duration_since(t).as_secs_f64()
            }
            None => 0.0,
        };
        *w = Some((now, total, rate));
        rate
    }
}

pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    metrics.record(
        &route,
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let mut out = String::new();
    out.push_str(
        "# HELP boundstate_http_requests_total HTTP requests by route, method and status.\n",
    );
    out.push_str("# TYPE boundstate_http_requests_total counter\n");
    for ((route, method, status), n) in m.requests.lock().expect("lock").iter() {
        let _ = writeln!(
            out,
            "boundstate_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
            escape(route)
        );
    }
    out.push_str("# HELP boundstate_http_request_duration_seconds Request latency by route.\n");
    out.push_str("# TYPE boundstate_http_request_duration_seconds histogram\n");
    for (route, h) in m.latency.lock().expect("lock").iter() {
        let r = escape(route);
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "boundstate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "boundstate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "boundstate_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "boundstate_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
            h.count
        );
    }
    out.push_str("# HELP boundstate_jobs Jobs by kind and state.\n# TYPE boundstate_jobs gauge\n");
    if let Ok(counts) = crate::store::jobs::counts(&state.db).await {
        for (kind, status, n) in counts {
            let _ = writeln!(
                out,
                "boundstate_jobs{{kind=\"{}\",state=\"{}\"}} {n}",
                escape(&kind),
                escape(&status)
            );
        }
    }
    let compute = state.jobs.compute();
    let attempts = SPIN_FLIP_ATTEMPTS.get();
    let _ = write!(
        out,
        "# HELP boundstate_job_queue_length Jobs waiting for a slot.\n# TYPE boundstate_job_queue_length gauge\nboundstate_job_queue_length {}\n\
         # HELP boundstate_jobs_running Jobs holding a slot.\n# TYPE boundstate_jobs_running gauge\nboundstate_jobs_running {}\n\
         # HELP boundstate_compute_threads Threads of the compute pools.\n# TYPE boundstate_compute_threads gauge\nboundstate_compute_threads{{pool=\"jobs\"}} {}\nboundstate_compute_threads{{pool=\"interactive\"}} {}\n\
         # HELP boundstate_compute_busy_tasks Compute tasks running (each may occupy every thread of its pool).\n# TYPE boundstate_compute_busy_tasks gauge\nboundstate_compute_busy_tasks {}\n\
         # HELP boundstate_spin_flip_attempts_total Single-spin update attempts by every sampler.\n# TYPE boundstate_spin_flip_attempts_total counter\nboundstate_spin_flip_attempts_total {attempts}\n\
         # HELP boundstate_spin_flip_attempts_per_second Attempts per second since the previous scrape.\n# TYPE boundstate_spin_flip_attempts_per_second gauge\nboundstate_spin_flip_attempts_per_second {}\n\
         # HELP boundstate_database_bytes Size of the database file and its WAL.\n# TYPE boundstate_database_bytes gauge\nboundstate_database_bytes {}\n",
        state.jobs.queue_length(),
        state.jobs.running_count(),
        compute.job_threads(),
        compute.interactive_threads(),
        compute.busy_tasks(),
        m.attempts_rate(attempts),
        state.db.size_bytes(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
