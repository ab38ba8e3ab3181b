//! HTTP routes, one module per seed section.

pub mod health;
pub mod ocpp;
pub mod payments;
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
fn stored_response(row: &sqlx::postgres::PgRow, key: &str, fingerprint: &[u8]) -> Result<Option<Response>, ApiError> {
    let hash: Vec<u8> = row.try_get("request_hash")?;
    if hash != fingerprint {
        return Err(ApiError::IdempotencyMismatch(format!(
            "Idempotency-Key {key:?} was already used with a different request"
        )));
    }
    let status: i16 = row.try_get("status")?;
    let body: Option<String> = row.try_get("body")?;
    match (StatusCode::from_u16(status as u16), body) {
        (Ok(status), Some(body)) => Ok(Some(raw_json(status, row.try_get("location")?, body))),
        // Status 0: the first request with this key is still running.
        _ => Ok(None),
    }
}

/// How long a request may hold its Idempotency-Key before it counts as abandoned.
const IN_FLIGHT_LEASE_SECS: i64 = 300;

/// Runs a command handler under an optional `Idempotency-Key` (Stripe's
/// semantics): the same key and request gets the stored response
/// (`Idempotent-Replayed: true`); another request under the key gets 422; a
/// duplicate while the first is still running gets 409. Failures are not
/// stored, so they can be retried.
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
    let Some(key) = key else { return Ok(run.await?.into_response()) };
    let in_flight =
        || ApiError::Conflict(format!("a request with Idempotency-Key {key:?} is still in progress; retry later"));
    // Claim the key, or learn what it already holds.
    let claimed = sqlx::query(
        "INSERT INTO idempotent_responses (company_id, key, request_hash, status, location, body) VALUES ($1, $2, $3, 0, NULL, NULL) \
         ON CONFLICT (company_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now() \
           WHERE idempotent_responses.status = 0 AND idempotent_responses.created_at < now() - $4 * interval '1 second' \
         RETURNING 1",
    )
    .bind(caller.company_id)
    .bind(key)
    .bind(fingerprint)
    .bind(IN_FLIGHT_LEASE_SECS)
    .fetch_optional(&state.pool)
    .await?;
    if claimed.is_none() {
        let row = sqlx::query(
            "SELECT request_hash, status, location, body FROM idempotent_responses WHERE company_id = $1 AND key = $2",
        )
        .bind(caller.company_id)
        .bind(key)
        .fetch_optional(&state.pool)
        .await?;
        let Some(row) = row else { return Err(in_flight()) };
        return match stored_response(&row, key, fingerprint)? {
            Some(mut response) => {
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                Ok(response)
            }
            None => Err(in_flight()),
        };
    }
    match run.await {
        Ok(stored) => {
            let text = serde_json::to_string(&stored.body).map_err(ApiError::internal)?;
            sqlx::query("UPDATE idempotent_responses SET status = $3, location = $4, body = $5 WHERE company_id = $1 AND key = $2")
                .bind(caller.company_id)
                .bind(key)
                .bind(stored.status.as_u16() as i16)
                .bind(&stored.location)
                .bind(&text)
                .execute(&state.pool)
                .await?;
            Ok(raw_json(stored.status, stored.location, text))
        }
        Err(error) => {
            // Not stored: the same request may be retried.
            sqlx::query("DELETE FROM idempotent_responses WHERE company_id = $1 AND key = $2 AND status = 0")
                .bind(caller.company_id)
                .bind(key)
                .execute(&state.pool)
                .await?;
            Err(error)
        }
    }
}
