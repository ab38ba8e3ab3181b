//! HTTP routes, one module per seed section.

pub mod charge;
pub mod health;
pub mod infrastructure;
pub mod ocpp;
pub mod payments;
pub mod terminals;
pub mod webhooks;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use sqlx::Row;

use crate::{auth::Caller, error::ApiError, state::AppState};

/// The platform's clock (`Config::clock`, which tests move), at the precision
/// Postgres keeps, so responses and read models agree.
pub(crate) fn now(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    state.config.clock.now().trunc_subsecs(6)
}

/// A command's HTTP answer, as stored for idempotent replay.
#[derive(Debug)]
pub struct Stored {
    /// HTTP status to answer; a replay with the same Idempotency-Key gets it again.
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
    raw(status, location, text, "application/json")
}

fn raw(status: StatusCode, location: Option<String>, text: String, content_type: &str) -> Response {
    let content_type = HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json"));
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], text).into_response();
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
    let content_type: String = row.try_get("content_type")?;
    match (StatusCode::from_u16(status as u16), body) {
        // Status 0: the first request with this key is still running (its body is its owner token).
        (Ok(status), Some(body)) if status.as_u16() != 0 => {
            let location: Option<String> = row.try_get("location")?;
            Ok(Some(raw(status, location, body, &content_type)))
        }
        _ => Ok(None),
    }
}

/// Members of a response shown once (a webhook's signing secret): the copy
/// kept for replays has them as `null`, with `secretWithheld: true`. A client
/// that lost the first answer rotates the secret.
const SHOWN_ONCE: &[&str] = &["secret"];

/// The body as stored for replays: without what is shown once.
fn for_storage(body: &Value) -> Value {
    let mut stored = body.clone();
    if let Some(members) = stored.as_object_mut() {
        let mut withheld = false;
        for name in SHOWN_ONCE {
            if let Some(value) = members.get_mut(*name).filter(|v| !v.is_null()) {
                *value = Value::Null;
                withheld = true;
            }
        }
        if withheld {
            members.insert("secretWithheld".into(), Value::Bool(true));
        }
    }
    stored
}

/// Releases a claim whose request was cancelled (the request timeout, or the
/// client went away) so a retry executes afresh instead of meeting a 409.
struct ClaimGuard {
    pool: sqlx::PgPool,
    company: uuid::Uuid,
    caller: String,
    key: String,
    token: String,
    armed: bool,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (pool, company, caller, key, token) = (
            self.pool.clone(),
            self.company,
            std::mem::take(&mut self.caller),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        runtime.spawn(async move {
            let released = sqlx::query(
                "DELETE FROM idempotent_responses WHERE company_id = $1 AND caller = $2 AND key = $3 AND status = 0 AND body = $4",
            )
            .bind(company)
            .bind(caller)
            .bind(key)
            .bind(token)
            .execute(&pool)
            .await;
            if let Err(error) = released {
                tracing::warn!(%error, "could not release an idempotency claim; it lapses with its process or lease");
            }
        });
    }
}

/// Runs a command handler under an optional `Idempotency-Key` (Stripe's
/// semantics), scoped to (company, caller): the same key and request gets the
/// stored response (`Idempotent-Replayed: true`); another request under the
/// key gets 422; a duplicate while the first is still running gets 409.
/// Failures are not stored, so they can be retried. A claim whose process is
/// gone is free at once, one of a live process after the request timeout plus
/// [`crate::idempotency::LEASE_SLACK`]; stored responses expire after
/// `CHARGELEDGER_IDEMPOTENCY_TTL_SECS` (ADR 0015).
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
    let Some(scoped) = key else { return Ok(run.await?.into_response()) };
    let key = crate::extract::bare_key(scoped);
    let in_flight =
        || ApiError::Conflict(format!("a request with Idempotency-Key {key:?} is still in progress; retry later"));
    let limits = &state.config.limits;
    let lease = (limits.request_timeout + crate::idempotency::LEASE_SLACK).as_secs_f64();
    let ttl = limits.idempotency_ttl.as_secs_f64();
    // Claim the key (with an owner token), or learn what it already holds.
    let token = uuid::Uuid::new_v4().to_string();
    let claimed = sqlx::query(
        "INSERT INTO idempotent_responses (company_id, caller, key, request_hash, status, location, body, instance) \
         VALUES ($1, $2, $3, $4, 0, NULL, $5, $6) \
         ON CONFLICT (company_id, caller, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, body = EXCLUDED.body, \
           instance = EXCLUDED.instance, status = 0, location = NULL, content_type = 'application/json', created_at = now() \
           WHERE idempotent_responses.created_at < now() - $8 * interval '1 second' \
              OR (idempotent_responses.status = 0 AND (idempotent_responses.created_at < now() - $7 * interval '1 second' \
                  OR idempotency_claim_abandoned(idempotent_responses.instance))) \
         RETURNING 1",
    )
    .bind(caller.company_id)
    .bind(caller.scope())
    .bind(key)
    .bind(fingerprint)
    .bind(&token)
    .bind(crate::idempotency::instance())
    .bind(lease)
    .bind(ttl)
    .fetch_optional(&state.pool)
    .await?;
    if claimed.is_none() {
        let row = sqlx::query(
            "SELECT request_hash, status, location, body, content_type FROM idempotent_responses \
             WHERE company_id = $1 AND caller = $2 AND key = $3",
        )
        .bind(caller.company_id)
        .bind(caller.scope())
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
    let mut guard = ClaimGuard {
        pool: state.pool.clone(),
        company: caller.company_id,
        caller: caller.scope(),
        key: key.to_owned(),
        token: token.clone(),
        armed: true,
    };
    let store = |status: StatusCode, location: Option<String>, text: String, content_type: &'static str| {
        sqlx::query(
            "UPDATE idempotent_responses SET status = $4, location = $5, body = $6, content_type = $8 \
             WHERE company_id = $1 AND caller = $2 AND key = $3 AND status = 0 AND body = $7",
        )
        .bind(caller.company_id)
        .bind(caller.scope())
        .bind(key)
        .bind(status.as_u16() as i16)
        .bind(location)
        .bind(text)
        .bind(token.clone())
        .bind(content_type)
        .execute(&state.pool)
    };
    let outcome = run.await;
    // The guard stays armed until the outcome is stored or the claim released.
    let answer = match outcome {
        Ok(stored) => {
            let text = serde_json::to_string(&stored.body).map_err(ApiError::internal)?;
            let kept = serde_json::to_string(&for_storage(&stored.body)).map_err(ApiError::internal)?;
            store(stored.status, stored.location.clone(), kept, "application/json").await?;
            raw_json(stored.status, stored.location, text)
        }
        // Errors that come after a side effect (a declined payment, a charger's
        // refusal or silence) are the answer to this key: a retry must not act again.
        Err(error @ (ApiError::PaymentDeclined { .. } | ApiError::BadGateway(_) | ApiError::GatewayTimeout(_))) => {
            let response = error.into_response();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.map_err(ApiError::internal)?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            store(status, None, text.clone(), "application/problem+json").await?;
            raw(status, None, text, "application/problem+json")
        }
        Err(error) => {
            // Not stored: the same request may be retried.
            sqlx::query(
                "DELETE FROM idempotent_responses WHERE company_id = $1 AND caller = $2 AND key = $3 AND status = 0 AND body = $4",
            )
            .bind(caller.company_id)
            .bind(caller.scope())
            .bind(key)
            .bind(&token)
            .execute(&state.pool)
            .await?;
            guard.armed = false;
            return Err(error);
        }
    };
    guard.armed = false;
    Ok(answer)
}

/// Keyset pagination over `(timestamp, id)`, newest first: the page size, the
/// decoded cursor and the next cursor, the same for every list.
/// A whole-number query parameter: `12`, and also `12.0` or `1.2e1` (the
/// document says `integer`, and JSON Schema's integer is any number without a
/// fraction, which is what a generated client may send). A fraction or text
/// is refused by the handler's query check (422).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    use std::str::FromStr;

    use serde::{de::Error, Deserialize};
    let Some(text) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Some(n));
    }
    let number = rust_decimal::Decimal::from_str(&text)
        .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
        .map_err(|_| D::Error::custom(format!("{text:?} is not an integer")))?;
    if !number.fract().is_zero() {
        return Err(D::Error::custom(format!("{text:?} is not an integer")));
    }
    i64::try_from(number).map(Some).map_err(|_| D::Error::custom(format!("{text:?} is out of range")))
}

pub mod page {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use domain::FieldError;

    use crate::error::ApiError;

    /// Refuses (422) a filter `value` that is none of `names`: an unknown
    /// status is a mistake, not a filter that matches nothing.
    pub fn one_of<'a>(
        field: &str,
        value: Option<&str>,
        names: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), ApiError> {
        match value {
            Some(v) if !names.clone().into_iter().any(|n| n == v) => {
                let names: Vec<&str> = names.into_iter().collect();
                let message = format!("must be one of {}", names.join(", "));
                Err(ApiError::Validation(vec![FieldError::new(field, message)]))
            }
            _ => Ok(()),
        }
    }

    /// `limit`, 1 to 200, default 50.
    pub fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
        let limit = limit.unwrap_or(50);
        if (1..=200).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::Validation(vec![FieldError::new("limit", "must be between 1 and 200")]))
        }
    }

    /// The shape of a keyset cursor: `<unix microseconds>.<uuid>` of the last
    /// row of the page before. Every string of this shape is a position (the
    /// page after it), so a client may also build one.
    pub const CURSOR_PATTERN: &str = "^-?[0-9]{1,16}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

    /// The position a `cursor` stands for (see [`CURSOR_PATTERN`]).
    pub fn after(cursor: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
        let Some(cursor) = cursor else { return Ok(None) };
        let parsed = cursor.split_once('.').and_then(|(micros, id)| {
            let digits = micros.strip_prefix('-').unwrap_or(micros);
            let lower_hex =
                id.len() == 36 && id.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) || !lower_hex {
                return None;
            }
            Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, Uuid::try_parse(id).ok()?))
        });
        parsed.map(Some).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "cursor",
                "must be <unix microseconds>.<uuid>, as nextCursor is",
            )])
        })
    }

    /// Cuts `rows` (fetched with `limit + 1`) to the page and returns the
    /// cursor of the next one, if there is one.
    pub fn next<T>(rows: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> Option<String> {
        if rows.len() as i64 <= limit {
            return None;
        }
        rows.truncate(limit as usize);
        rows.last().map(|l| {
            let (at, id) = key(l);
            format!("{}.{id}", at.timestamp_micros())
        })
    }
}
