//! One model per free-energy minimum (issue 7): a planted data set where the single reduced model
//! loses its rare patterns, and the mixture that gets them back — over HTTP.

use crate::common::*;
use crate::lifecycle::{train, wait_job};
use serde_json::{Value, json};

/// The planted set of the engine test (seed 4: the single order-2 model loses two patterns).
pub fn planted() -> (Vec<String>, Vec<u64>) {
    let d = boundstate::engine::experts::planted_common_rare(16, 4, 4).unwrap();
    (
        d.patterns().iter().map(|p| p.to_string()).collect(),
        d.counts().to_vec(),
    )
}

fn class_rate(report: &Value, class: &str) -> f64 {
    report["by_weight"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == class)
        .unwrap_or_else(|| panic!("no class {class} in {report}"))["retrieval_rate"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn experts_retrieve_the_rare_patterns_the_single_model_loses() {
    let app = TestApp::spawn().await;
    let (patterns, counts) = planted();
    let (s, d) = app
        .post(
            "/v1/datasets",
            &json!({"name": "planted", "patterns": patterns, "counts": counts}),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let ds = d["id"].as_i64().unwrap();
    let (_, parent, follow) = train(
        &app,
        json!({"dataset_id": ds, "description": {"order": 2}, "method": "exact", "l2": 0.01, "seed": 1,
               "experts": {"per_minimum": true}}),
    )
    .await;
    let ej = wait_job(&app, follow.expect("experts job")).await;
    assert_eq!(ej["status"], "succeeded", "{ej}");
    assert_eq!(ej["kind"], "experts");
    let mixture = ej["model_id"].as_i64().unwrap();
    let (_, m) = app.get(&format!("/v1/models/{mixture}")).await;
    assert_eq!(m["kind"], "mixture");
    assert_eq!(m["report"]["source_model_id"], parent);
    let experts = m["report"]["experts"].as_array().unwrap();
    assert!(experts.len() >= 2, "{m}");
    let shares: f64 = experts.iter().map(|e| e["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-12);
    assert_eq!(
        m["report"]["unheld_patterns"].as_array().unwrap().len(),
        0,
        "every pattern is a minimum of some expert: {m}"
    );
    // An expert is a model of its own.
    let e0 = experts[0]["model_id"].as_i64().unwrap();
    let (_, e) = app.get(&format!("/v1/models/{e0}")).await;
    assert_eq!(e["kind"], "expert");
    assert_eq!(e["parent_id"], mixture);

    // Side by side on 2-flip cues (10 per pattern; the rate per class is over 30 cues).
    let (s, ev) = app
        .post(
            &format!("/v1/models/{mixture}/evaluate-retrieval"),
            &json!({"flip_fraction": 0.125, "cues_per_pattern": 10, "seed": 5, "sweeps": 10, "restarts": 4}),
        )
        .await;
    assert_eq!(s, 200, "{ev}");
    let rare_mix = class_rate(&ev, "count 4-7");
    let common_mix = class_rate(&ev, "count 64-127");
    let rare_single = class_rate(&ev["parent"], "count 4-7");
    let common_single = class_rate(&ev["parent"], "count 64-127");
    eprintln!(
        "planted N=16: rare {rare_single:.2} → {rare_mix:.2}, common {common_single:.2} → {common_mix:.2}"
    );
    assert!(rare_mix >= 0.9, "mixture retrieves the rare patterns: {ev}");
    assert!(rare_single <= 0.5, "the single model loses them: {ev}");
    assert!(
        common_mix >= common_single - 0.1,
        "no loss on the common ones: {ev}"
    );

    // Gated retrieval over REST reports the chosen expert, the runner-up and the margin.
    let (s, r) = app
        .post(
            &format!("/v1/models/{mixture}/retrieve"),
            &json!({"query": patterns[3], "sweeps": 0, "restarts": 2}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let res = &r["results"][0];
    assert_eq!(res["completed"], patterns[3]);
    assert_eq!(res["verdict"], "retrieved");
    assert!(res["gate"]["margin"].as_f64().unwrap() > 0.0, "{res}");
    assert!(res["gate"]["runner_up"].is_u64());

    // Sampling the mixture: experts drawn in proportion to their shares.
    let (s, set) = app
        .post(
            &format!("/v1/models/{mixture}/samples"),
            &json!({"count": 2000, "sweeps": 1, "burn_in": 20, "seed": 4}),
        )
        .await;
    assert!(s == 201 || s == 202, "{set}");
    let set = if s == 202 {
        let j = wait_job(&app, set["id"].as_i64().unwrap()).await;
        let (_, set) = app
            .get(&format!("/v1/sample-sets/{}", j["result"]["sample_set_id"]))
            .await;
        set
    } else {
        set
    };
    for part in set["summary"]["experts"].as_array().unwrap() {
        let share = part["share"].as_f64().unwrap();
        let got = part["count"].as_f64().unwrap() / 2000.0;
        // Multinomial: 4 standard deviations of a proportion from 2000 draws.
        let tol = 4.0 * (share * (1.0 - share) / 2000.0).sqrt();
        assert!(
            (got - share).abs() <= tol,
            "expert share {share} drawn {got} (±{tol})"
        );
    }
    // Bad input on a mixture.
    assert_error(
        &app.post(
            &format!("/v1/models/{mixture}/samples"),
            &json!({"expert": 99}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            &format!("/v1/models/{parent}/retrieve"),
            &json!({"query": patterns[0], "gating": "posterior"}),
        )
        .await,
        422,
        "invalid_field",
    );
}
