//! Request extraction for commands: a JSON body with errors as problem+json,
//! checked against the route's schema in the OpenAPI document
//! ([`crate::openapi::bodies`]), the `Idempotency-Key`, and a fingerprint of
//! the request.

use axum::{
    extract::{FromRequest, MatchedPath, Request},
    http::{header, request::Parts, Method},
    response::{IntoResponse, Response},
};
use commands::hashing::canonical_json;
use domain::FieldError;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{auth::Caller, error::ApiError, state::AppState};

/// A command request: typed body, idempotency key and request fingerprint.
#[derive(Debug)]
pub struct JsonCommand<T> {
    /// The body.
    pub body: T,
    /// `Idempotency-Key`, if sent, scoped to the caller (see [`scoped_key`]).
    pub idempotency_key: Option<String>,
    /// HMAC-SHA-256 (keyed from `CHARGELEDGER_SECRETS_KEY`) over method, path and
    /// the canonical JSON body: two requests are "the same" when they say the same
    /// thing, whatever their whitespace or key order. Keyed, so a stored
    /// fingerprint is no offline oracle for secrets in the body (charger passwords).
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

/// An `Idempotency-Key` scoped to its caller: `"<key> <role>:<actor>"` (keys hold no
/// space, so the split is unambiguous). It names the command in the command
/// log and the row of `idempotent_responses`, so another caller of the same
/// company using the same key gets its own execution (ADR 0015). The caller is
/// the one the limits middleware authenticated; without one the key stays bare
/// (the handler's own authentication refuses the request anyway).
pub fn scoped_key(parts: &Parts, key: Option<String>) -> Option<String> {
    let key = key?;
    Some(match parts.extensions.get::<Caller>() {
        Some(caller) => format!("{key} {}", caller.scope()),
        None => key,
    })
}

/// The key as the client sent it (what problem texts quote).
pub fn bare_key(scoped: &str) -> &str {
    scoped.split_once(' ').map_or(scoped, |(key, _)| key)
}

/// Whether a body error is the size limit (then 413, not 400).
fn is_too_large(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn fingerprint(key: &[u8], method: &Method, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let mut canonical = String::new();
    canonical_json(body, &mut canonical);
    let mut message = Vec::with_capacity(canonical.len() + path.len() + 16);
    message.extend_from_slice(method.as_str().as_bytes());
    message.push(0);
    message.extend_from_slice(path.as_bytes());
    message.push(0);
    message.extend_from_slice(canonical.as_bytes());
    hmac_sha256(key, &message).to_vec()
}

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonCommand<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let idempotency_key = scoped_key(&parts, idempotency_key(&parts.headers).map_err(IntoResponse::into_response)?);
        let is_json =
            parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(
                ApiError::BadRequest("send a JSON body with Content-Type: application/json".into()).into_response()
            );
        }
        let max = state.config.limits.max_body_bytes;
        let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
            if is_too_large(&e) {
                crate::limits::too_large(max)
            } else {
                ApiError::BadRequest("the request body could not be read".into()).into_response()
            }
        })?;
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")).into_response())?;
        let nul = crate::openapi::bodies::nul_paths(&value);
        if !nul.is_empty() {
            return Err(ApiError::Validation(nul).into_response());
        }
        if let Some(route) = parts.extensions.get::<MatchedPath>() {
            let role = parts.extensions.get::<Caller>().map(|c| c.role.as_str());
            let errors = crate::openapi::bodies::violations(&parts.method, route.as_str(), &value, role);
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors).into_response());
            }
        }
        // `5000.0` and `5000` are the same request: normalized before the fingerprint.
        crate::openapi::bodies::whole_numbers_as_integers(&mut value);
        let fingerprint = fingerprint(&state.config.fingerprint_key(), &parts.method, parts.uri.path(), &value);
        let body = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::Validation(vec![FieldError::new(field, e.inner().to_string())]).into_response()
        })?;
        Ok(Self { body, idempotency_key, fingerprint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
