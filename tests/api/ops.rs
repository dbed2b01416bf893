//! Access control and metrics.

use crate::common::*;
use serde_json::json;

const READ: &str = "reader-0123456789abcdef";
const WRITE: &str = "writer-0123456789abcdef";

async fn keyed_app(protect_metrics: bool) -> TestApp {
    let dir = fresh_dir();
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, format!("# lab keys\n{READ} read\n{WRITE} write\n")).unwrap();
    TestApp::spawn_with(move |c| {
        c.api_keys_file = Some(keys);
        c.protect_metrics = protect_metrics;
    })
    .await
}

#[tokio::test]
async fn keys_guard_every_route_class() {
    let app = keyed_app(false).await;
    let c = &app.client;
    let ds = json!({"name": "k", "patterns": ["0101"]});
    // Open: health, readiness, metrics, spec, docs.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        assert_eq!(
            c.get(app.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    // Every /v1 class without a key: 401 with a WWW-Authenticate header.
    for path in [
        "/v1/datasets",
        "/v1/models",
        "/v1/jobs",
        "/v1/datasets/1",
        "/v1/jobs/1/events",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"));
        assert_error(&split(r).await, 401, "unauthorized");
    }
    let r = c
        .post(app.url("/v1/datasets"))
        .json(&ds)
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 401, "unauthorized");
    let r = c
        .get(app.url("/v1/datasets"))
        .bearer_auth("not-a-key-at-all-000")
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 401, "unauthorized");
    // Read key: reads pass, writes are 403.
    let r = c
        .get(app.url("/v1/datasets"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(app.url("/v1/datasets"))
        .bearer_auth(READ)
        .json(&ds)
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 403, "forbidden");
    let r = c
        .delete(app.url("/v1/datasets/1"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 403, "forbidden");
    let r = c
        .post(app.url("/v1/models"))
        .bearer_auth(READ)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 403, "forbidden");
    let r = c
        .post(app.url("/v1/jobs/1/cancel"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 403, "forbidden");
    // Write key: everything.
    let r = c
        .post(app.url("/v1/datasets"))
        .bearer_auth(WRITE)
        .json(&ds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(app.url("/v1/datasets/1"))
        .bearer_auth(WRITE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn metrics_can_be_protected() {
    let app = keyed_app(true).await;
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_error(&split(r).await, 401, "unauthorized");
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn open_server_refuses_a_public_address() {
    let dir = fresh_dir();
    let config =
        boundstate::config::Config::for_tests(format!("sqlite://{}", dir.join("t.db").display()));
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = boundstate::server::serve(listener, config, async {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("BOUNDSTATE_API_KEYS_FILE"),
        "{err}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/v1/datasets").await;
    app.get("/v1/datasets/77").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "boundstate_http_requests_total{route=\"/v1/datasets\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("boundstate_http_requests_total{route=\"/v1/datasets/{id}\",method=\"GET\",status=\"404\"} 1"), "{text}");
    assert!(text.contains(
        "boundstate_http_request_duration_seconds_bucket{route=\"/v1/datasets\",le=\"+Inf\"} 1"
    ));
    for name in [
        "boundstate_job_queue_length",
        "boundstate_compute_busy_tasks",
        "boundstate_spin_flip_attempts_total",
        "boundstate_spin_flip_attempts_per_second",
        "boundstate_database_bytes",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}
