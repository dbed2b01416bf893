//! Webhooks: when a job with a `callback_url` reaches a terminal state, POST the job JSON there,
//! signed with HMAC-SHA256 (`X-Boundstate-Signature: sha256=<hex>` over the exact body), retried
//! with exponential backoff; every attempt is recorded on the job.

use crate::store::{self, Db};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

/// Attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 5;

/// HMAC-SHA256 of `body` under `secret`, hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Check a callback URL at submission: plain `http://` with a host (TLS is not built in; put a
/// proxy in front for `https`).
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        "must start with http:// (https is not supported by this build; use an internal proxy)"
            .to_string()
    })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("has no host".into());
    }
    if url.len() > 2000 {
        return Err("is longer than 2000 characters".into());
    }
    Ok(())
}

/// Deliver `job` (already serialised as the API shows it) to `url`; records every attempt.
pub async fn deliver(
    db: Db,
    client: reqwest::Client,
    secret: String,
    job_id: i64,
    url: String,
    job: Value,
) {
    let body = serde_json::to_vec(&job).expect("job serialises");
    let sig = format!("sha256={}", signature(&secret, &body));
    let mut attempts: Vec<Value> = Vec::new();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=MAX_ATTEMPTS {
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-boundstate-event", "job.finished")
            .header("x-boundstate-signature", &sig)
            .header("x-boundstate-delivery", format!("{job_id}-{attempt}"))
            .timeout(Duration::from_secs(10))
            .body(body.clone())
            .send()
            .await;
        let (status, error) = match &result {
            Ok(r) => (
                Some(r.status().as_u16()),
                (!r.status().is_success()).then(|| format!("HTTP {}", r.status())),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let ok = error.is_none();
        attempts.push(
            json!({ "attempt": attempt, "at": store::now(), "status": status, "error": error }),
        );
        if let Err(e) =
            store::jobs::set_deliveries(&db, job_id, &Value::Array(attempts.clone()).to_string())
                .await
        {
            tracing::warn!(job_id, error = %e, "could not record webhook delivery");
        }
        if ok {
            tracing::info!(job_id, attempt, "webhook delivered");
            return;
        }
        tracing::warn!(job_id, attempt, "webhook delivery failed");
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls() {
        assert!(validate_url("http://lab-host:9000/hook").is_ok());
        assert!(validate_url("https://x").is_err());
        assert!(validate_url("http:///x").is_err());
        assert!(validate_url("ftp://x").is_err());
    }
}
