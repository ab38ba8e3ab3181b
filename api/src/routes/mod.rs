//! HTTP routes, one module per seed section.

pub mod health;
pub mod ocpp;
pub mod terminals;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use sqlx::Row;

use crate::{auth::Caller, error::ApiError, state::AppState};

/// A command's HTTP answer, as stored for idempotent replay.
#[derive(Debug)]
pub struct Stored {
    /// Status.
    pub status: StatusCode,
    /// `Location`, for creations.
    pub location: Option<String>,
    /// JSON body.
    pub body: Value,
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let text = serde_json::to_string(&self.body).unwrap_or_default();
        raw_json(self.status, self.location, text)
    }
}

/// A JSON response from already-serialized bytes (what a replay sends back).
fn raw_json(status: StatusCode, location: Option<String>, text: String) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response();
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The stored answer to a key, if the request is the same one; 422 otherwise.
fn stored_response(row: &sqlx::postgres::PgRow, key: &str, fingerprint: &[u8]) -> Result<Response, ApiError> {
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != fingerprint {
        return Err(ApiError::IdempotencyMismatch(format!(
            "Idempotency-Key {key:?} was already used with a different request"
        )));
    }
    let status: i16 = row.try_get("status")?;
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    Ok(raw_json(status, row.try_get("location")?, row.try_get("body")?))
}

/// Runs a command handler under an optional `Idempotency-Key`: a repeat with the
/// same request gets the stored response (`Idempotent-Replayed: true`), a repeat
/// with another request gets 422. Failures are not stored, so they can be retried.
pub async fn idempotent<F>(
    state: &AppState,
    caller: &Caller,
    key: Option<&str>,
    fingerprint: &[u8],
    run: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Stored, ApiError>>,
{
    let Some(key) = key else {
        return Ok(run.await?.into_response());
    };
    let lookup = || async {
        sqlx::query(
            "SELECT request_hash, status, location, body FROM idempotent_responses WHERE company_id = $1 AND key = $2",
        )
        .bind(caller.company_id)
        .bind(key)
        .fetch_optional(&state.pool)
        .await
    };
    if let Some(row) = lookup().await? {
        let mut response = stored_response(&row, key, fingerprint)?;
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    let stored = run.await?;
    let text = serde_json::to_string(&stored.body).map_err(ApiError::internal)?;
    let inserted = sqlx::query(
        "INSERT INTO idempotent_responses (company_id, key, request_hash, status, location, body) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (company_id, key) DO NOTHING RETURNING 1",
    )
    .bind(caller.company_id)
    .bind(key)
    .bind(fingerprint)
    .bind(stored.status.as_u16() as i16)
    .bind(&stored.location)
    .bind(&text)
    .fetch_optional(&state.pool)
    .await?;
    if inserted.is_none() {
        // A concurrent duplicate stored its answer first: everyone gets that one.
        if let Some(row) = lookup().await? {
            return stored_response(&row, key, fingerprint);
        }
    }
    Ok(raw_json(stored.status, stored.location, text))
}
