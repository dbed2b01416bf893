use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn import_bqm_round_trip_energies_and_delete() {
    let app = TestApp::spawn().await;
    // dimod convention: E = Σ h s + Σ J s s + offset.
    let bqm = json!({"vartype": "SPIN", "linear": [[0, 0.5], [1, -0.25], [2, 0.0]], "quadratic": [[0, 1, 1.0], [1, 2, -0.5]], "offset": 0.1});
    let (s, m) = app
        .post(
            "/v1/models",
            &json!({"name": "imp", "temperature": 1.0, "bqm": bqm}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["method"], "imported");
    assert_eq!(m["n_spins"], 3);
    let id = m["id"].as_i64().unwrap();
    let (_, b) = app
        .get(&format!("/v1/models/{id}/couplings?format=bqm"))
        .await;
    assert_eq!(b["vartype"], "SPIN");
    // Every configuration: our energy equals dimod's energy of the same spins.
    let mut patterns = Vec::new();
    let mut expected = Vec::new();
    for i in 0..8u32 {
        let s: Vec<i64> = (0..3)
            .map(|a| if (i >> a) & 1 == 1 { 1 } else { -1 })
            .collect();
        let e = 0.5 * s[0] as f64 - 0.25 * s[1] as f64 + 1.0 * (s[0] * s[1]) as f64
            - 0.5 * (s[1] * s[2]) as f64
            + 0.1;
        patterns.push(json!(s));
        expected.push(e);
    }
    let (s, r) = app
        .post(
            &format!("/v1/models/{id}/energies"),
            &json!({"patterns": patterns, "encoding": "spins"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let log_z = r["log_partition"].as_f64().unwrap();
    let z: f64 = expected.iter().map(|e| (-e).exp()).sum();
    assert!((log_z - z.ln()).abs() < 1e-12);
    let mut total_p = 0.0;
    for (k, e) in expected.iter().enumerate() {
        let got = &r["results"][k];
        assert!((got["energy"].as_f64().unwrap() - e).abs() < 1e-12, "{got}");
        total_p += got["log_probability"].as_f64().unwrap().exp();
    }
    assert!((total_p - 1.0).abs() < 1e-12);

    // JSON couplings round trip through import.
    let (_, c) = app.get(&format!("/v1/models/{id}/couplings")).await;
    let (s, m2) = app
        .post("/v1/models", &json!({"temperature": 2.0, "couplings": c}))
        .await;
    assert_eq!(s, 201, "{m2}");
    let id2 = m2["id"].as_i64().unwrap();
    let (_, c2) = app.get(&format!("/v1/models/{id2}/couplings")).await;
    assert_eq!(c, c2);

    let (_, l) = app.get("/v1/models").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.delete(&format!("/v1/models/{id}")).await.0, 204);
    assert_error(
        &app.get(&format!("/v1/models/{id}")).await,
        404,
        "model_not_found",
    );
}

#[tokio::test]
async fn model_bad_input() {
    let app = TestApp::spawn().await;
    let c = json!({"n_spins": 3, "description": "order", "order": 3, "offset": 0.0, "couplings": [{"spins": [0, 1, 2], "value": 1.0}]});
    let (s, m) = app.post("/v1/models", &json!({"couplings": c})).await;
    assert_eq!(s, 201, "{m}");
    let id = m["id"].as_i64().unwrap();
    assert_error(
        &app.get(&format!("/v1/models/{id}/couplings?format=bqm"))
            .await,
        422,
        "unprocessable",
    );
    assert_error(
        &app.get(&format!("/v1/models/{id}/couplings?format=xml"))
            .await,
        400,
        "invalid_query",
    );
    let m = assert_error(
        &app.post("/v1/models", &json!({"couplings": {"n_spins": 3, "description": "custom", "offset": 0.0, "couplings": [{"spins": [0, 5], "value": 1.0}]}})).await,
        422,
        "invalid_field",
    );
    assert!(m.contains("couplings.couplings[0].spins"), "{m}");
    assert_error(
        &app.post("/v1/models", &json!({"couplings": c, "temperature": -1.0}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post("/v1/models", &json!({"temperature": 1.0})).await,
        422,
        "invalid_field",
    );
    let m = assert_error(
        &app.post(
            &format!("/v1/models/{id}/energies"),
            &json!({"patterns": ["0101"]}),
        )
        .await,
        422,
        "invalid_pattern",
    );
    assert!(m.contains("patterns[0]"), "{m}");
    assert_error(
        &app.post(
            &format!("/v1/models/{id}/energies"),
            &json!({"patterns": ["01x"]}),
        )
        .await,
        422,
        "invalid_pattern",
    );
    assert_error(
        &app.post("/v1/models/99/energies", &json!({"patterns": ["010"]}))
            .await,
        404,
        "model_not_found",
    );
    assert_error(&app.get("/v1/jobs/5").await, 404, "job_not_found");
    assert_error(
        &app.post("/v1/jobs/5/cancel", &json!({})).await,
        404,
        "job_not_found",
    );
    assert_error(
        &app.get("/v1/jobs?status=bogus").await,
        400,
        "invalid_query",
    );
}
