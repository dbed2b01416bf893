//! API keys: with a keys file configured, every `/v1` request needs `Authorization: Bearer <key>`;
//! `read` keys may only read (GET, HEAD). Keys are compared in constant time (over their SHA-256
//! digests, so their lengths do not leak either) and never logged.

use super::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
}

/// The configured keys (digests only).
#[derive(Clone, Debug, Default)]
pub struct Keys {
    keys: Vec<([u8; 32], Scope)>,
}

impl Keys {
    /// Parse a keys file: one `<key> <scope>` per line, scope `read` or `write`; blank lines and
    /// `#` comments ignored.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the API keys file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut parts = t.split_whitespace();
            let (Some(key), Some(scope), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {}: expected `<key> <read|write>`", i + 1));
            };
            let scope = match scope {
                "read" => Scope::Read,
                "write" => Scope::Write,
                other => {
                    return Err(format!(
                        "line {}: scope '{other}' is not read or write",
                        i + 1
                    ));
                }
            };
            if key.len() < 16 {
                return Err(format!(
                    "line {}: a key must have at least 16 characters",
                    i + 1
                ));
            }
            keys.push((digest(key), scope));
        }
        if keys.is_empty() {
            return Err("no keys in the file".into());
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The scope of a presented key, checking every key in constant time.
    pub fn scope_of(&self, presented: &str) -> Option<Scope> {
        let d = digest(presented);
        let mut found: Option<Scope> = None;
        for (k, scope) in &self.keys {
            if bool::from(k.ct_eq(&d)) {
                found = Some(*scope);
            }
        }
        found
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Which requests need a key.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    pub keys: Arc<Keys>,
    pub protect_metrics: bool,
}

pub async fn require_key(State(policy): State<AuthPolicy>, req: Request, next: Next) -> Response {
    if policy.keys.is_empty() {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let protected =
        path.starts_with("/v1/") || path == "/v1" || (policy.protect_metrics && path == "/metrics");
    if !protected {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "this server requires an API key: send `Authorization: Bearer <key>`",
        )
        .into_response();
    };
    match policy.keys.scope_of(presented) {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "unknown API key",
        )
        .into_response(),
        Some(Scope::Read) if !matches!(*req.method(), Method::GET | Method::HEAD) => ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this key has the read scope; writing needs a key with the write scope",
        )
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let k =
            Keys::parse("# lab keys\nreader-key-0123456789 read\n\nwriter-key-0123456789 write\n")
                .unwrap();
        assert_eq!(k.scope_of("reader-key-0123456789"), Some(Scope::Read));
        assert_eq!(k.scope_of("writer-key-0123456789"), Some(Scope::Write));
        assert_eq!(k.scope_of("writer-key-012345678"), None);
        assert!(Keys::parse("short read").is_err());
        assert!(Keys::parse("a-long-enough-key-here admin").is_err());
        assert!(Keys::parse("# only comments").is_err());
    }
}
