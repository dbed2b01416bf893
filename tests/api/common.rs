//! The `spawn_app` harness: the real server on a random port with a fresh database per test.

use boundstate::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

pub fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "boundstate-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = fresh_dir();
        let mut config = Config::for_tests(format!("sqlite://{}", dir.join("test.db").display()));
        tweak(&mut config);
        let mut app = TestApp {
            addr: "127.0.0.1:0".parse().unwrap(),
            client: reqwest::Client::new(),
            dir,
            config,
            shutdown: None,
            handle: None,
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let config = self.config.clone();
        let handle = tokio::spawn(async move {
            boundstate::server::serve(listener, config, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        self.shutdown = Some(tx);
        self.handle = Some(handle);
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server did not become ready");
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }

    /// Stop and start again on the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.client = reqwest::Client::new();
        self.start().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        split(r).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    pub async fn post_text(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        split(r).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.client.delete(self.url(path)).send().await.unwrap();
        split(r).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn split(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Path of a file under examples/data.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/data")
        .join(name)
}

/// Assert an error body with the given status and code; returns the message.
#[track_caller]
pub fn assert_error(resp: &(u16, Value), status: u16, code: &str) -> String {
    assert_eq!(resp.0, status, "body: {}", resp.1);
    assert_eq!(resp.1["error"]["code"], code, "body: {}", resp.1);
    resp.1["error"]["message"].as_str().unwrap().to_string()
}
