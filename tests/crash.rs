//! Crash safety: SIGKILL the real server binary at random points while datasets are uploaded and
//! models trained, restart it, and check that every acknowledged write survived intact, that no
//! job is stuck in `running`, and that SQLite's integrity check passes.

use boundstate::engine::{ChainRng, Dataset, Pattern};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: usize = 24;

struct Server {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[allow(clippy::zombie_processes)] // every caller kills and waits for the child
async fn start(db: &str) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_boundstate"))
        .arg("serve")
        .env("BOUNDSTATE_BIND", format!("127.0.0.1:{port}"))
        .env("BOUNDSTATE_DATABASE_URL", db)
        .env("BOUNDSTATE_LOG", "warn")
        .env("BOUNDSTATE_COMPUTE_THREADS", "1")
        .env("BOUNDSTATE_CHECKPOINT_INTERVAL", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not start");
}

fn random_dataset(rng: &mut ChainRng) -> (Vec<String>, String) {
    let n = 8 + rng.below(40) as usize;
    let rows = 1 + rng.below(3000) as usize;
    let lines: Vec<String> = (0..rows)
        .map(|_| {
            (0..n)
                .map(|_| if rng.below(2) == 1 { '1' } else { '0' })
                .collect()
        })
        .collect();
    let (ds, _) = Dataset::from_rows(
        n,
        lines.iter().map(|l| (Pattern::parse_bits(l).unwrap(), 1)),
    )
    .unwrap();
    let sha = boundstate::api::datasets::canonical_sha256(&ds);
    (lines, sha)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = std::env::temp_dir().join(format!("boundstate-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("crash.db").display());
    let client = reqwest::Client::new();
    let mut rng = ChainRng::new(2026, 0);
    // id → (sha256, first row) of every dataset whose creation was acknowledged.
    let mut acknowledged: HashMap<i64, (String, String)> = HashMap::new();
    let mut acked_jobs: Vec<i64> = Vec::new();

    for round in 0..KILLS {
        let mut server = start(&db).await;
        // Everything acknowledged so far is intact after the restart.
        verify(&client, &server.base, &acknowledged).await;
        let base = server.base.clone();
        let mut uploads = Vec::new();
        for k in 0..4 {
            let (lines, sha) = random_dataset(&mut rng);
            let client = client.clone();
            let base = base.clone();
            uploads.push(tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/v1/datasets?name=crash-{round}-{k}"))
                    .header("content-type", "text/plain")
                    .body(lines.join("\n"))
                    .send()
                    .await
                    .ok()?;
                if r.status() != 201 {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                Some((
                    v["id"].as_i64()?,
                    v["sha256"].as_str()?.to_owned(),
                    sha,
                    lines[0].clone(),
                ))
            }));
        }
        if let Some(train) = training_body(&acknowledged)
            && let Ok(r) = client
                .post(format!("{base}/v1/training-jobs"))
                .json(&train)
                .send()
                .await
            && r.status() == 202
            && let Ok(v) = r.json::<Value>().await
        {
            acked_jobs.push(v["id"].as_i64().unwrap());
        }
        // Kill at a random point while the uploads and the training run.
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for u in uploads {
            if let Ok(Some((id, served_sha, local_sha, first))) = u.await {
                assert_eq!(served_sha, local_sha, "the server hashed what it received");
                acknowledged.insert(id, (served_sha, first));
            }
        }
    }
    assert!(
        acknowledged.len() >= 10,
        "too few uploads were acknowledged: {}",
        acknowledged.len()
    );

    // Final life: everything is there, every job reaches a terminal state.
    let mut server = start(&db).await;
    verify(&client, &server.base, &acknowledged).await;
    let t0 = Instant::now();
    for id in &acked_jobs {
        loop {
            let v: Value = client
                .get(format!("{}/v1/jobs/{id}", server.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let s = v["status"].as_str().unwrap().to_owned();
            if !matches!(s.as_str(), "queued" | "running") {
                if s == "succeeded" {
                    let mid = v["model_id"].as_i64().unwrap();
                    let m: Value = client
                        .get(format!("{}/v1/models/{mid}", server.base))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert!(
                        m["sha256"].as_str().is_some(),
                        "model {mid} of job {id} is intact: {m}"
                    );
                }
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "job {id} never finished: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let store = boundstate::store::Db::connect(&db).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn verify(
    client: &reqwest::Client,
    base: &str,
    acknowledged: &HashMap<i64, (String, String)>,
) {
    for (id, (sha, first)) in acknowledged {
        let r = client
            .get(format!("{base}/v1/datasets/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged dataset {id} is missing");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["sha256"].as_str().unwrap(), sha, "dataset {id} changed");
        let rows: Value = client
            .get(format!("{base}/v1/datasets/{id}/rows?limit=1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rows["items"][0]["pattern"].as_str().unwrap(), first);
    }
}

/// A small training job on one of the acknowledged datasets (none before the first upload).
fn training_body(acknowledged: &HashMap<i64, (String, String)>) -> Option<Value> {
    let id = *acknowledged.keys().max()?;
    Some(
        json!({"dataset_id": id, "description": {"order": 2}, "method": "pseudolikelihood", "temperature": 1.0}),
    )
}
