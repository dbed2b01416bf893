//! The whole path a user drives over HTTP: upload, train, census, minima, landscape, samples,
//! retrieval, evaluation — checked against exact enumeration where N allows.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Poll a job until it reaches a terminal state.
pub async fn wait_job(app: &TestApp, id: i64) -> Value {
    for _ in 0..2400 {
        let (s, j) = app.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(s, 200, "{j}");
        if !matches!(j["status"].as_str(), Some("queued" | "running")) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

pub async fn upload(app: &TestApp, file: &str) -> i64 {
    let text = std::fs::read_to_string(example(file)).unwrap();
    let (s, d) = app
        .post_text(&format!("/v1/datasets?name={file}"), &text)
        .await;
    assert_eq!(s, 201, "{d}");
    d["id"].as_i64().unwrap()
}

/// Train and wait; returns (training job, model id, follow-up job).
pub async fn train(app: &TestApp, body: Value) -> (Value, i64, Option<i64>) {
    let (s, j) = app.post("/v1/training-jobs", &body).await;
    assert_eq!(s, 202, "{j}");
    let j = wait_job(app, j["id"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let model = j["model_id"].as_i64().unwrap();
    (j.clone(), model, j["result"]["follow_up_job_id"].as_i64())
}

/// Distinct patterns and counts of a data file.
fn read_data(file: &str) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for l in std::fs::read_to_string(example(file)).unwrap().lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        *counts.entry(l.to_string()).or_default() += 1;
    }
    counts.into_iter().collect()
}

#[tokio::test]
async fn exact_training_reports_the_potential_that_enumeration_gives() {
    let app = TestApp::spawn().await;
    let ds = upload(&app, "digits4x4.txt").await;
    let (job, model, census) = train(
        &app,
        json!({"dataset_id": ds, "description": {"order": 2}, "method": "exact", "temperature": 1.0, "l2": 0.01, "seed": 7}),
    )
    .await;
    assert_eq!(job["params"]["seed"], 7);
    let (_, m) = app.get(&format!("/v1/models/{model}")).await;
    assert_eq!(m["method"], "exact");
    assert_eq!(m["n_spins"], 16);
    assert_eq!(m["n_couplings"], 16 + 120);
    let rep = &m["report"];
    assert_eq!(rep["converged"], true, "{rep}");
    assert_eq!(rep["seed"], 7);
    assert!(rep["dataset_sha256"].is_string());
    // Φ = Σ_μ w_μ E(ξ^μ) + T ln Z, recomputed from the energies endpoint (exact ln Z).
    let data = read_data("digits4x4.txt");
    let total: u64 = data.iter().map(|d| d.1).sum();
    let pats: Vec<&str> = data.iter().map(|d| d.0.as_str()).collect();
    let (s, e) = app
        .post(
            &format!("/v1/models/{model}/energies"),
            &json!({"patterns": pats}),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    let log_z = e["log_partition"].as_f64().unwrap();
    let mut phi = log_z;
    let mut s_w = 0.0;
    for (k, (_, c)) in data.iter().enumerate() {
        let w = *c as f64 / total as f64;
        phi += w * e["results"][k]["energy"].as_f64().unwrap();
        s_w -= w * w.ln();
    }
    let reported = rep["potential"].as_f64().unwrap();
    assert!(
        (phi - reported).abs() < 1e-8,
        "Φ {phi} vs reported {reported}"
    );
    assert!(
        phi >= s_w - 1e-12,
        "Gibbs inequality: Φ {phi} < T S_w {s_w}"
    );
    // The census ran by itself afterwards.
    let c = wait_job(&app, census.expect("census queued")).await;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["kind"], "census");
    let (s, cz) = app.get(&format!("/v1/models/{model}/census")).await;
    assert_eq!(s, 200, "{cz}");
    assert_eq!(cz["method"], "exact");
}

#[tokio::test]
async fn full_description_library_landscape_samples_and_retrieval() {
    let app = TestApp::spawn().await;
    let ds = upload(&app, "digits4x4.txt").await;
    let (_, model, census) = train(
        &app,
        json!({"dataset_id": ds, "description": {"full": true}, "library_probability": 0.99}),
    )
    .await;
    let c = wait_job(&app, census.unwrap()).await;
    assert_eq!(c["status"], "succeeded", "{c}");

    // Minima of the full description (model.md §3), computed here from the weights alone:
    // strict = every training neighbour one flip away strictly lighter; weak = none heavier but
    // some equal (a plateau of equally deep holes, which the census lists as one weak minimum).
    let data = read_data("digits4x4.txt");
    let count: std::collections::HashMap<&str, u64> =
        data.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let neighbours = |p: &str| -> Vec<u64> {
        (0..16)
            .filter_map(|a| {
                let mut q: Vec<u8> = p.bytes().collect();
                q[a] = if q[a] == b'1' { b'0' } else { b'1' };
                count.get(std::str::from_utf8(&q).unwrap()).copied()
            })
            .collect()
    };
    let mut strict = Vec::new();
    let mut weak = std::collections::HashSet::new();
    for (p, c) in &data {
        let nb = neighbours(p);
        if nb.iter().all(|x| x < c) {
            strict.push(p.clone());
        } else if nb.iter().all(|x| x <= c) {
            weak.insert(p.clone());
        }
    }
    strict.sort();
    assert_eq!(strict.len() + weak.len(), 19, "model.md §3: 19 of 185");
    let (s, page) = app
        .get(&format!("/v1/models/{model}/minima?kind=memory&limit=1000"))
        .await;
    assert_eq!(s, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let mut got: Vec<String> = items
        .iter()
        .filter(|m| m["strict"] == true)
        .map(|m| m["pattern"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, strict);
    for m in items.iter().filter(|m| m["strict"] == false) {
        assert!(weak.contains(m["pattern"].as_str().unwrap()), "{m}");
    }
    let (_, fs) = app
        .get(&format!("/v1/models/{model}/minima?kind=false_state"))
        .await;
    assert_eq!(
        fs["items"].as_array().unwrap().len(),
        0,
        "the full description has no false states"
    );
    // Sorted by free energy; weights and the continuum add up to 1.
    let f: Vec<f64> = items
        .iter()
        .map(|m| m["free_energy"].as_f64().unwrap())
        .collect();
    assert!(f.windows(2).all(|w| w[0] <= w[1]));
    let (_, all) = app
        .get(&format!("/v1/models/{model}/minima?limit=1000"))
        .await;
    let w: f64 = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["weight"].as_f64().unwrap())
        .sum();
    let (_, cz) = app.get(&format!("/v1/models/{model}/census")).await;
    let cont = cz["summary"]["continuum"]["weight"].as_f64().unwrap_or(0.0);
    assert!(
        (w + cont - 1.0).abs() < 1e-9,
        "minima {w} + continuum {cont}"
    );
    // One minimum by id, and a foreign id.
    let first = &items[0];
    let mid = first["id"].as_i64().unwrap();
    let (s, one) = app
        .get(&format!("/v1/models/{model}/minima/{mid}?format=spins"))
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["pattern"].as_array().unwrap().len(), 16);
    let r = app.get(&format!("/v1/models/{model}/minima/999999")).await;
    assert_error(&r, 404, "minimum_not_found");

    // Retrieval by quench (sweeps 0) from a strict memory with one bit flipped: back to it.
    let strict = items
        .iter()
        .find(|m| m["strict"] == true)
        .expect("a strict memory");
    let target = strict["pattern"].as_str().unwrap();
    let mut cue: Vec<u8> = target.bytes().collect();
    cue[3] = if cue[3] == b'1' { b'0' } else { b'1' };
    let cue = String::from_utf8(cue).unwrap();
    let (s, r) = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"query": cue, "sweeps": 0, "restarts": 4, "seed": 1}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let res = &r["results"][0];
    assert_eq!(res["verdict"], "retrieved", "{res}");
    assert_eq!(res["completed"], target);
    assert_eq!(res["hamming"], 1);
    assert_eq!(res["confidence"], 1.0);
    assert_eq!(res["minimum"]["kind"], "memory");
    // Partial query: unknown bits completed.
    let partial: String = target
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 2 { '?' } else { c })
        .collect();
    let (s, r) = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"queries": [partial, target], "sweeps": 0}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["results"].as_array().unwrap().len(), 2);
    assert_eq!(r["results"][1]["completed"], target);
    // Bad queries name the field.
    let m = assert_error(
        &app.post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"query": "?".repeat(16)}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert!(m.contains("sampling"), "{m}");
    let bad = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"queries": ["0101", target]}),
        )
        .await;
    assert_eq!(bad.0, 422, "{}", bad.1);
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queries[0]")
    );
    let bad = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"query": target, "restarts": 100000}),
        )
        .await;
    assert_error(&bad, 422, "invalid_field");

    // Landscape: T_× solves Σ_μ e^{Δ_μ/T} = 2^N − M with Δ_μ = E_u + T₀ ln w_μ.
    let (s, j) = app
        .post(
            &format!("/v1/models/{model}/landscape"),
            &json!({"t_min": 0.3, "t_max": 4.0, "steps": 12}),
        )
        .await;
    assert_eq!(s, 202, "{j}");
    let j = wait_job(&app, j["id"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let (s, l) = app.get(&format!("/v1/models/{model}/landscape")).await;
    assert_eq!(s, 200, "{l}");
    let total: u64 = data.iter().map(|d| d.1).sum();
    let m_distinct = data.len() as f64;
    let rest = 65536.0 - m_distinct;
    let e_u = (rest * 0.99 / 0.01f64).ln();
    let gaps: Vec<f64> = data
        .iter()
        .map(|(_, c)| e_u + (*c as f64 / total as f64).ln())
        .collect();
    let f = |t: f64| gaps.iter().map(|d| (d / t).exp()).sum::<f64>() - rest;
    let (mut lo, mut hi) = (0.3, 4.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 { lo = mid } else { hi = mid }
    }
    let tx = l["melting_temperature"].as_f64().unwrap();
    assert!((tx - lo).abs() < 1e-6, "T_× {tx} vs {lo}");
    let r = app
        .client
        .get(app.url(&format!("/v1/models/{model}/landscape.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<svg"));

    // Samples inside one bound state, with a seed: reproducible, every sample stored.
    let body = json!({"count": 40, "init": {"minimum": mid}, "sweeps": 5, "burn_in": 0, "seed": 3, "temperature": 0.5});
    let (s, set) = app
        .post(&format!("/v1/models/{model}/samples"), &body)
        .await;
    assert_eq!(s, 201, "{set}");
    assert_eq!(set["n_samples"], 40);
    let occ: u64 = set["summary"]["occupancy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    assert_eq!(occ, 40);
    let sid = set["id"].as_i64().unwrap();
    let (_, set2) = app
        .post(&format!("/v1/models/{model}/samples"), &body)
        .await;
    let (_, p1) = app
        .get(&format!("/v1/sample-sets/{sid}/patterns?limit=40"))
        .await;
    let (_, p2) = app
        .get(&format!(
            "/v1/sample-sets/{}/patterns?limit=40",
            set2["id"].as_i64().unwrap()
        ))
        .await;
    assert_eq!(p1["items"], p2["items"], "same seed, same samples");
    let (_, agg) = app
        .get(&format!("/v1/sample-sets/{sid}/patterns?aggregate=true"))
        .await;
    let n_occ: u64 = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["num_occurrences"].as_u64().unwrap())
        .sum();
    assert_eq!(n_occ, 40);
    let (s, inside) = app
        .get(&format!(
            "/v1/sample-sets/{sid}/patterns?minimum={mid}&limit=1000"
        ))
        .await;
    assert_eq!(s, 200);
    for i in inside["items"].as_array().unwrap() {
        assert_eq!(i["minimum_id"], mid);
    }
    // Clamped generation holds the clamped bits.
    let clamp: String = (0..16).map(|i| if i < 4 { '1' } else { '?' }).collect();
    let (s, cs) = app
        .post(
            &format!("/v1/models/{model}/samples"),
            &json!({"count": 20, "clamp": clamp, "seed": 5}),
        )
        .await;
    assert_eq!(s, 201, "{cs}");
    let (_, pats) = app
        .get(&format!(
            "/v1/sample-sets/{}/patterns?limit=100",
            cs["id"].as_i64().unwrap()
        ))
        .await;
    for i in pats["items"].as_array().unwrap() {
        assert!(i["pattern"].as_str().unwrap().starts_with("1111"), "{i}");
    }
    // A large request becomes a job (on an order-2 model: a full description makes every flip
    // update 2^(N−1) couplings per spin, which no sampling request should be tested on).
    let (_, pairwise, _) = train(
        &app,
        json!({"dataset_id": ds, "description": {"order": 2}, "method": "exact", "census": false}),
    )
    .await;
    let (s, j) = app
        .post(
            &format!("/v1/models/{pairwise}/samples"),
            &json!({"count": 20000, "sweeps": 100, "seed": 1}),
        )
        .await;
    assert_eq!(s, 202, "{j}");
    let j = wait_job(&app, j["id"].as_i64().unwrap()).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let big = j["result"]["sample_set_id"].as_i64().unwrap();
    let (_, b) = app.get(&format!("/v1/sample-sets/{big}")).await;
    assert_eq!(b["n_samples"], 20000);
    // Bad sampling input.
    assert_error(
        &app.post(
            &format!("/v1/models/{model}/samples"),
            &json!({"init": {"minimum": 999999}}),
        )
        .await,
        404,
        "minimum_not_found",
    );
    assert_error(
        &app.post(
            &format!("/v1/models/{model}/samples"),
            &json!({"clamp": "01"}),
        )
        .await,
        422,
        "invalid_pattern",
    );
    assert_error(
        &app.post(&format!("/v1/models/{model}/samples"), &json!({"thin": 0}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/v1/sample-sets/999999").await,
        404,
        "sample_set_not_found",
    );

    // The standard evaluation: every memory retrieved from 1-flip cues by quench.
    let (s, ev) = app
        .post(
            &format!("/v1/models/{model}/evaluate-retrieval"),
            &json!({"flip_fraction": 0.0625, "cues_per_pattern": 2, "sweeps": 0, "restarts": 1, "seed": 9}),
        )
        .await;
    assert_eq!(s, 200, "{ev}");
    assert_eq!(ev["overall"]["cues"], 2 * data.len());
    assert!(ev["by_weight"].as_array().unwrap().len() > 1);
}

#[tokio::test]
async fn training_rejects_bad_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let ds = upload(&app, "digits4x4.txt").await;
    let big = upload(&app, "digits8x8.txt").await;
    let post = |b: Value| {
        let app = &app;
        async move { app.post("/v1/training-jobs", &b).await }
    };
    let r = post(json!({"dataset_id": 999, "description": {"order": 2}})).await;
    assert_error(&r, 404, "dataset_not_found");
    for (body, field) in [
        (
            json!({"dataset_id": ds, "description": {"order": 0}}),
            "description.order",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 17}}),
            "description.order",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2, "full": true}}),
            "description",
        ),
        (
            json!({"dataset_id": ds, "description": {"interactions": [[0, 16]]}}),
            "description.interactions",
        ),
        (
            json!({"dataset_id": ds, "description": {"interactions": [[0, 0]]}}),
            "description.interactions",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "temperature": 0.0}),
            "temperature",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "temperature": -1.0}),
            "temperature",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "l2": -1.0}),
            "l2",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "chains": 0}),
            "chains",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "library_probability": 1.0}),
            "library_probability",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "method": "full"}),
            "method",
        ),
        (
            json!({"dataset_id": ds, "description": {"full": true}, "method": "projection"}),
            "method",
        ),
        (
            json!({"dataset_id": ds, "description": {"order": 2}, "callback_url": "ftp://x"}),
            "callback_url",
        ),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.0, 422, "{body} → {}", r.1);
        let msg = r.1["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with(field),
            "{body}: '{msg}' should name {field}"
        );
    }
    let r = post(json!({"dataset_id": big, "description": {"order": 2}, "method": "exact"})).await;
    let m = assert_error(&r, 422, "unprocessable");
    assert!(m.contains("sampled"), "suggests sampled: {m}");
    let r = post(json!({"dataset_id": big, "description": {"full": true}})).await;
    assert_eq!(r.0, 422, "{}", r.1);
    let r = post(json!({"dataset_id": ds, "description": {"order": 2}, "bogus": 1})).await;
    assert_eq!(r.0, 400, "{}", r.1);
    let r = post(json!({"dataset_id": ds, "description": {"order": 2}, "method": "magic"})).await;
    let m = assert_error(&r, 400, "malformed_json");
    assert_eq!(r.1["error"]["details"]["path"], "method", "{m}");
    // Nothing was queued by any of these.
    let (_, jobs) = app.get("/v1/jobs").await;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn queue_full_is_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.max_queued_jobs = 0).await;
    let ds = upload(&app, "digits4x4.txt").await;
    let r = app
        .client
        .post(app.url("/v1/training-jobs"))
        .json(&json!({"dataset_id": ds, "description": {"order": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn events_stream_progress_then_the_terminal_state_and_cancel_stops_training() {
    let app = TestApp::spawn().await;
    let ds = upload(&app, "digits8x8.txt").await;
    // A long sampled run: cancelled after its first progress events.
    let (s, j) = app
        .post(
            "/v1/training-jobs",
            &json!({"dataset_id": ds, "description": {"order": 2}, "method": "sampled", "max_iterations": 100000, "tolerance": 1e-9, "seed": 1, "census": false}),
        )
        .await;
    assert_eq!(s, 202, "{j}");
    let id = j["id"].as_i64().unwrap();
    let mut resp = app
        .client
        .get(app.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut cancelled = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => break,
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        // Cancel once the optimisation itself reports (after the pseudo-likelihood start).
        if !cancelled && text.matches("\"max_moment_error\"").count() >= 2 {
            let (s, c) = app.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await;
            assert_eq!(s, 202, "{c}");
            cancelled = true;
        }
    }
    assert!(text.contains("event: progress"), "{text}");
    assert!(text.contains("\"max_moment_error\""), "{text}");
    let last = text.rsplit("event: state").next().unwrap();
    assert!(last.contains("\"cancelled\""), "last state: {last}");
    let (_, job) = app.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "cancelled");
    assert!(
        job.get("model_id").is_none(),
        "no model from a cancelled job"
    );
    let (_, models) = app.get("/v1/models").await;
    assert_eq!(models["items"].as_array().unwrap().len(), 0);
    assert_error(
        &app.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await,
        409,
        "job_finished",
    );
}

#[tokio::test]
async fn a_stopped_server_resumes_training_from_its_checkpoint() {
    let mut app = TestApp::spawn_with(|c| c.checkpoint_interval_secs = 1).await;
    let ds = upload(&app, "digits8x8.txt").await;
    let (s, j) = app
        .post(
            "/v1/training-jobs",
            &json!({"dataset_id": ds, "description": {"order": 2}, "method": "sampled", "max_iterations": 400, "seed": 2, "census": false}),
        )
        .await;
    assert_eq!(s, 202, "{j}");
    let id = j["id"].as_i64().unwrap();
    // Wait for a checkpoint, then stop the server mid-training.
    for _ in 0..600 {
        let (_, j) = app.get(&format!("/v1/jobs/{id}")).await;
        if j["checkpoint_at"].is_string() || j["status"] != "running" && j["status"] != "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, before) = app.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(before["status"], "running", "{before}");
    app.restart().await;
    let j = wait_job(&app, id).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert!(j["attempts"].as_i64().unwrap() >= 2, "{j}");
    let (_, m) = app
        .get(&format!("/v1/models/{}", j["model_id"].as_i64().unwrap()))
        .await;
    assert!(
        m["report"]["resumed_from_iteration"].as_u64().is_some(),
        "{m}"
    );
}

#[tokio::test]
async fn planted_patterns_are_retrieved_from_cues_with_15_percent_flipped() {
    let app = TestApp::spawn().await;
    let mut rng = boundstate::engine::ChainRng::new(128, 0);
    let n = 128;
    let planted: Vec<String> = (0..10)
        .map(|_| {
            (0..n)
                .map(|_| if rng.below(2) == 1 { '1' } else { '0' })
                .collect()
        })
        .collect();
    let (s, d) = app
        .post(
            "/v1/datasets",
            &json!({"name": "planted128", "patterns": planted}),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let (_, model, census) = train(
        &app,
        json!({"dataset_id": d["id"], "description": {"order": 2}, "method": "pseudolikelihood", "seed": 1}),
    )
    .await;
    let c = wait_job(&app, census.unwrap()).await;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["result"]["method"], "mean_field");
    // Every planted pattern is a memory of the census.
    let (_, mem) = app
        .get(&format!("/v1/models/{model}/minima?kind=memory&limit=1000"))
        .await;
    let found: std::collections::HashSet<&str> = mem["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pattern"].as_str().unwrap())
        .collect();
    for p in &planted {
        assert!(
            found.contains(p.as_str()),
            "planted pattern missing from the census"
        );
    }
    // 20 cues per pattern, 15 % of the bits (19 of 128) flipped.
    let mut cues = Vec::new();
    let mut targets = Vec::new();
    for p in &planted {
        for _ in 0..20 {
            let mut b: Vec<u8> = p.bytes().collect();
            let mut flipped = std::collections::BTreeSet::new();
            while flipped.len() < 19 {
                flipped.insert(rng.below(n as u64) as usize);
            }
            for &a in &flipped {
                b[a] = if b[a] == b'1' { b'0' } else { b'1' };
            }
            cues.push(String::from_utf8(b).unwrap());
            targets.push(p.clone());
        }
    }
    let (s, r) = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"queries": cues, "seed": 3}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    let ok = results
        .iter()
        .zip(&targets)
        .filter(|(x, t)| x["verdict"] == "retrieved" && x["completed"] == t.as_str())
        .count();
    let rate = ok as f64 / results.len() as f64;
    eprintln!(
        "planted N=128: {ok}/{} cues retrieved their pattern",
        results.len()
    );
    assert!(rate >= 0.99, "retrieval rate {rate}");
    // Cues with every bit random: how often is the verdict `retrieved`?
    let random: Vec<String> = (0..200)
        .map(|_| {
            (0..n)
                .map(|_| if rng.below(2) == 1 { '1' } else { '0' })
                .collect()
        })
        .collect();
    let (_, r) = app
        .post(
            &format!("/v1/models/{model}/retrieve"),
            &json!({"queries": random, "seed": 4}),
        )
        .await;
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for x in r["results"].as_array().unwrap() {
        *tally
            .entry(x["verdict"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!("planted N=128, 200 random cues: {tally:?}");
}
