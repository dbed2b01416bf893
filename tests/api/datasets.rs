use crate::common::*;
use serde_json::{Value, json};

fn read_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(example(name))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Read every row back through the paginated rows endpoint.
async fn all_rows(app: &TestApp, id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/datasets/{id}/rows?limit=1000&cursor={c}"),
            None => format!("/v1/datasets/{id}/rows?limit=1000"),
        };
        let (s, v) = app.get(&path).await;
        assert_eq!(s, 200, "{v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn digits_upload_and_read_back_bit_exact_across_restart() {
    let mut app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for (file, n, distinct) in [("digits4x4.txt", 16, 185), ("digits8x8.txt", 64, 1750)] {
        let text = std::fs::read_to_string(example(file)).unwrap();
        let (s, v) = app
            .post_text(&format!("/v1/datasets?name={file}"), &text)
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["n_spins"], n);
        assert_eq!(v["n_samples"], 1797);
        assert_eq!(v["n_distinct"], distinct);
        ids.push((
            file,
            v["id"].as_i64().unwrap(),
            v["sha256"].as_str().unwrap().to_owned(),
        ));
    }
    app.restart().await;
    for (file, id, sha) in ids {
        let (s, v) = app.get(&format!("/v1/datasets/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(v["sha256"], sha.as_str());
        let rows = all_rows(&app, id).await;
        let expected = read_lines(file);
        assert_eq!(rows.len(), expected.len());
        for (r, e) in rows.iter().zip(&expected) {
            assert_eq!(r["pattern"].as_str().unwrap(), e);
        }
        // Distinct patterns: counts sum to the rows and each count matches the file.
        let (_, p) = app
            .get(&format!("/v1/datasets/{id}/patterns?limit=1000"))
            .await;
        let mut total = 0;
        let mut items: Vec<Value> = p["items"].as_array().unwrap().clone();
        let mut cursor = p["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let (_, p) = app
                .get(&format!("/v1/datasets/{id}/patterns?limit=1000&cursor={c}"))
                .await;
            items.extend(p["items"].as_array().unwrap().iter().cloned());
            cursor = p["next_cursor"].as_str().map(str::to_owned);
        }
        for it in &items {
            let pat = it["pattern"].as_str().unwrap();
            let c = it["count"].as_i64().unwrap();
            assert_eq!(
                c as usize,
                expected.iter().filter(|e| e.as_str() == pat).count()
            );
            total += c;
        }
        assert_eq!(total, 1797);
    }
}

#[tokio::test]
async fn json_forms_counts_labels_and_entropy() {
    let app = TestApp::spawn().await;
    let (s, a) = app
        .post(
            "/v1/datasets",
            &json!({"name": "a", "patterns": ["0110", [1, 0, 0, 1], "0110"], "counts": [2, 1, 1], "labels": ["x", 7, "y"]}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["n_samples"], 4);
    assert_eq!(a["n_distinct"], 2);
    // w = (3/4, 1/4)
    let sw = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert!((a["entropy"].as_f64().unwrap() - sw).abs() < 1e-12);
    let id = a["id"].as_i64().unwrap();
    let (_, p) = app
        .get(&format!("/v1/datasets/{id}/patterns?format=spins"))
        .await;
    assert_eq!(p["items"][0]["pattern"], json!([-1, 1, 1, -1]));
    assert_eq!(p["items"][0]["count"], 3);
    assert_eq!(p["items"][0]["labels"], json!({"x": 2, "y": 1}));
    assert_eq!(p["items"][1]["labels"], json!({"7": 1}));
    let (_, r) = app.get(&format!("/v1/datasets/{id}/rows")).await;
    assert_eq!(r["items"][1]["label"], "7");
    assert_eq!(r["items"][2]["index"], 0);

    // The same content as spins, in another order, has the same sha256.
    let (s, b) = app
        .post(
            "/v1/datasets",
            &json!({"name": "b", "encoding": "spins", "patterns": [[1, -1, -1, 1], [-1, 1, 1, -1]], "counts": [1, 3]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(a["sha256"], b["sha256"]);

    // Listing, pagination and delete.
    let (_, l) = app.get("/v1/datasets?limit=1").await;
    assert_eq!(l["items"][0]["name"], "b");
    let c = l["next_cursor"].as_str().unwrap().to_owned();
    let (_, l2) = app.get(&format!("/v1/datasets?limit=1&cursor={c}")).await;
    assert_eq!(l2["items"][0]["name"], "a");
    assert!(l2["next_cursor"].is_null());
    let (s, _) = app.delete(&format!("/v1/datasets/{id}")).await;
    assert_eq!(s, 204);
    assert_error(
        &app.get(&format!("/v1/datasets/{id}")).await,
        404,
        "dataset_not_found",
    );
    assert_error(
        &app.delete(&format!("/v1/datasets/{id}")).await,
        404,
        "dataset_not_found",
    );
}

#[tokio::test]
async fn text_upload_skips_comments_and_blank_lines() {
    let app = TestApp::spawn().await;
    let (s, v) = app
        .post_text(
            "/v1/datasets?name=t",
            "# a comment\n\n0101\n  \n1111\n# more\n0101\n",
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["n_samples"].as_i64(), v["n_distinct"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(v["name"], "t");
}

#[tokio::test]
async fn bad_input_is_named_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.max_spins = 8;
        c.max_rows = 5;
        c.body_limit = 4096;
    })
    .await;
    let post = |body: Value| {
        let app = &app;
        async move { app.post("/v1/datasets", &body).await }
    };
    let m = assert_error(
        &post(json!({"name": "r", "patterns": ["0101", "011"]})).await,
        422,
        "ragged_rows",
    );
    assert!(
        m.contains("row 1") && m.contains('3') && m.contains('4'),
        "{m}"
    );
    let r = post(json!({"name": "c", "patterns": ["0101", "01x1"]})).await;
    let m = assert_error(&r, 422, "invalid_pattern");
    assert!(m.contains("row 1") && m.contains("column 2"), "{m}");
    assert_eq!(r.1["error"]["details"], json!({"row": 1, "column": 2}));
    let m = assert_error(
        &post(json!({"name": "s", "encoding": "spins", "patterns": [[1, -1], [1, 0]]})).await,
        422,
        "invalid_pattern",
    );
    assert!(m.contains("row 1") && m.contains("column 1"), "{m}");
    assert_error(
        &post(json!({"name": "b", "patterns": [[0, 2]]})).await,
        422,
        "invalid_pattern",
    );
    assert_error(
        &post(json!({"name": "b", "patterns": [[0, 0.5]]})).await,
        422,
        "invalid_pattern",
    );
    let m = assert_error(
        &post(json!({"name": "n", "patterns": ["01"], "counts": [0]})).await,
        422,
        "invalid_counts",
    );
    assert!(m.contains("counts[0]"), "{m}");
    assert_error(
        &post(json!({"name": "n", "patterns": ["01"], "counts": [1.5]})).await,
        422,
        "invalid_counts",
    );
    assert_error(
        &post(json!({"name": "n", "patterns": ["01"], "counts": ["2"]})).await,
        422,
        "invalid_counts",
    );
    assert_error(
        &post(json!({"name": "n", "patterns": ["01", "10"], "counts": [1]})).await,
        422,
        "invalid_counts",
    );
    assert_error(
        &post(json!({"name": "e", "patterns": []})).await,
        422,
        "empty_dataset",
    );
    assert_error(
        &app.post_text("/v1/datasets?name=e", "# nothing\n\n").await,
        422,
        "empty_dataset",
    );
    assert_error(
        &post(json!({"name": "big", "patterns": ["010101010"]})).await,
        422,
        "too_many_spins",
    );
    assert_error(
        &post(json!({"name": "rows", "patterns": ["0", "1", "0", "1", "0", "1"]})).await,
        422,
        "too_many_rows",
    );
    assert_error(
        &app.post_text("/v1/datasets?name=rows", "0\n1\n0\n1\n0\n1\n")
            .await,
        422,
        "too_many_rows",
    );
    let big: Vec<String> = (0..2000).map(|_| "01".to_string()).collect();
    assert_error(
        &post(json!({"name": "huge", "patterns": big})).await,
        413,
        "payload_too_large",
    );
    let m = assert_error(
        &post(json!({"name": "u", "patterns": ["01"], "weights": [1]})).await,
        400,
        "unknown_field",
    );
    assert!(m.contains("weights"), "{m}");
    assert_error(
        &post(json!({"name": "u", "patterns": ["01"], "encoding": "hex"})).await,
        400,
        "malformed_json",
    );
    assert_error(
        &post(json!({"patterns": ["01"]})).await,
        422,
        "invalid_field",
    );
    let r = app
        .client
        .post(app.url("/v1/datasets"))
        .header("content-type", "application/json")
        .body("{\"name\": \"x\", \"patterns\": [\"01\",]}")
        .send()
        .await
        .unwrap();
    let r = split(r).await;
    assert_error(&r, 400, "malformed_json");
    assert!(r.1["error"]["details"]["line"].as_u64().is_some());
    let r = app
        .client
        .post(app.url("/v1/datasets"))
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 415, "unsupported_media_type");
    let r = app
        .client
        .post(app.url("/v1/datasets"))
        .body("0101")
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 415, "unsupported_media_type");
    let m = assert_error(
        &app.post_text("/v1/datasets?name=t", "0101\n0111\n011\n")
            .await,
        422,
        "ragged_rows",
    );
    assert!(m.contains("line 3"), "{m}");
    let m = assert_error(
        &app.post_text("/v1/datasets?name=t", "0101\n0121\n").await,
        422,
        "invalid_pattern",
    );
    assert!(m.contains("line 2") && m.contains("column 2"), "{m}");
    assert_error(&app.get("/v1/datasets/999").await, 404, "dataset_not_found");
    assert_error(
        &app.get("/v1/datasets/999/patterns").await,
        404,
        "dataset_not_found",
    );
    assert_error(
        &app.get("/v1/datasets?cursor=zz").await,
        400,
        "invalid_query",
    );
    assert_error(&app.get("/v1/datasets?bogus=1").await, 400, "invalid_query");

    // Nothing was written.
    let (s, l) = app.get("/v1/datasets").await;
    assert_eq!(s, 200);
    assert_eq!(l["items"], json!([]));
}
