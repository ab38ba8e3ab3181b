//! Request extraction for commands: a JSON body with errors as problem+json,
//! the `Idempotency-Key`, and a fingerprint of the request.

use axum::{
    extract::{FromRequest, Request},
    http::{header, Method},
};
use commands::hashing::canonical_json;
use domain::FieldError;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY: usize = 256 * 1024;

/// A command request: typed body, idempotency key and request fingerprint.
#[derive(Debug)]
pub struct JsonCommand<T> {
    /// The body.
    pub body: T,
    /// `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// SHA-256 over method, path and the canonical JSON body: two requests are
    /// "the same" when they say the same thing, whatever their whitespace or key order.
    pub fingerprint: Vec<u8>,
}

/// Reads and checks the `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new("Idempotency-Key", "must be 1 to 255 visible ASCII characters")])
    })
}

fn fingerprint(method: &Method, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let mut canonical = String::new();
    canonical_json(body, &mut canonical);
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update([0]);
    h.update(path);
    h.update([0]);
    h.update(canonical);
    h.finalize().to_vec()
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonCommand<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let idempotency_key = idempotency_key(&parts.headers)?;
        let is_json =
            parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::BadRequest("send a JSON body with Content-Type: application/json".into()));
        }
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::BadRequest(format!("body is unreadable or larger than {MAX_BODY} bytes")))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let fingerprint = fingerprint(&parts.method, parts.uri.path(), &value);
        let body = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::Validation(vec![FieldError::new(field, e.inner().to_string())])
        })?;
        Ok(Self { body, idempotency_key, fingerprint })
    }
}
