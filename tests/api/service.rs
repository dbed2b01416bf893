use crate::common::*;

#[tokio::test]
async fn health_ready_docs_and_spec() {
    let app = TestApp::spawn().await;
    let (s, v) = app.get("/healthz").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    let (s, v) = app.get("/readyz").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ready")));
    let (s, spec) = app.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(spec["paths"]["/v1/datasets"]["post"].is_object());
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    assert_error(&app.get("/v1/nothing").await, 404, "route_not_found");
    let r = app
        .client
        .put(app.url("/v1/datasets"))
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 405, "method_not_allowed");
    assert_error(&app.get("/v1/datasets/abc").await, 400, "invalid_query");
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
}

/// The committed openapi/openapi.json must equal the document generated from the code.
/// Regenerate with `cargo run -- openapi > openapi/openapi.json`.
#[test]
fn committed_openapi_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = boundstate::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// Every `$ref` in the document resolves to a component.
#[test]
fn every_reference_resolves() {
    let doc: serde_json::Value = serde_json::from_str(&boundstate::api::openapi_json()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "unresolved reference {r}");
    }
}
