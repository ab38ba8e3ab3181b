//! From what a charger or a payment did to the session it belongs to, read
//! from the log (the manager runs ahead of the projectors, so no read model).
//!
//! OCPP transaction ids are only unique per charger (1.6 ids count per
//! charger; 2.0.1 ids are the charger's own strings), so every lookup from a
//! transaction is keyed by (company, charge point, transaction id), and a start
//! by (company, charge point, id tag) to the session awaiting it — never to the
//! first session on the platform with that id (ADR 0019).

use domain::{terminal::OcppVersion, CompanyId};
use sqlx::Row;
use uuid::Uuid;

use crate::{EventStore, StoreError};

fn session_of_stream(stream: &str) -> Option<Uuid> {
    Uuid::parse_str(stream.strip_prefix("charge_session-")?).ok()
}

async fn one(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    store: &EventStore,
) -> Result<Option<Uuid>, StoreError> {
    let row = query.fetch_optional(store.pool()).await?;
    Ok(row.and_then(|r| r.try_get::<String, _>("stream_id").ok()).as_deref().and_then(session_of_stream))
}

/// The company's first session whose event found by `sql` (`$1` the value,
/// `$2` the company) names `value`. Each query names its payload key literally,
/// so the key's expression index serves it.
async fn first_session(
    store: &EventStore,
    company: CompanyId,
    sql: &'static str,
    value: &str,
) -> Result<Option<Uuid>, StoreError> {
    one(sqlx::query(sql).bind(value).bind(company.as_uuid().to_string()), store).await
}

/// The company's session paid by `intent`.
pub(crate) async fn session_of_intent(
    store: &EventStore,
    company: CompanyId,
    intent: &str,
) -> Result<Option<Uuid>, StoreError> {
    let sql = "SELECT stream_id FROM events WHERE event_type = 'charge_session.started' \
               AND payload->>'paymentIntentId' = $1 AND metadata->>'companyId' = $2 ORDER BY position LIMIT 1";
    first_session(store, company, sql, intent).await
}

/// The company's session whose remote start is the charger command `command`.
pub(crate) async fn session_of_command(
    store: &EventStore,
    company: CompanyId,
    command: &str,
) -> Result<Option<Uuid>, StoreError> {
    let sql = "SELECT stream_id FROM events WHERE event_type = 'charge_session.remote_start_sent' \
               AND payload->>'commandId' = $1 AND metadata->>'companyId' = $2 ORDER BY position LIMIT 1";
    first_session(store, company, sql, command).await
}

/// The OCPP session of the company on `charge_point` that a transaction
/// started at log position `before` with `id_tag` answers: the latest one
/// started there with that tag before it (so a replay finds the same one).
pub(crate) async fn session_awaiting_start(
    store: &EventStore,
    company: CompanyId,
    charge_point: &str,
    id_tag: &str,
    before: i64,
) -> Result<Option<Uuid>, StoreError> {
    let query = sqlx::query(
        "SELECT stream_id FROM events WHERE event_type = 'charge_session.started' \
         AND payload->>'idTag' = $1 AND payload->>'chargePointId' = $2 AND metadata->>'companyId' = $3 \
         AND payload->>'kind' = 'ocpp' AND position < $4 ORDER BY position DESC LIMIT 1",
    )
    .bind(id_tag)
    .bind(charge_point)
    .bind(company.as_uuid().to_string())
    .bind(before);
    one(query, store).await
}

/// The company's session on `charge_point` charging in `transaction`.
/// The gateway never reuses a transaction id on one charger (1.6 ids count up,
/// an ended 2.0.1 id is refused), so there is at most one; the latest wins if
/// a charger's history ever holds two.
pub(crate) async fn session_of_transaction(
    store: &EventStore,
    company: CompanyId,
    charge_point: &str,
    transaction: &str,
) -> Result<Option<Uuid>, StoreError> {
    let query = sqlx::query(
        "SELECT cs.stream_id FROM events cs \
         JOIN events st ON st.stream_id = cs.stream_id AND st.stream_version = 1 \
         WHERE cs.event_type = 'charge_session.charging_started' AND cs.payload->>'transactionId' = $1 \
           AND st.event_type = 'charge_session.started' AND st.payload->>'chargePointId' = $2 \
           AND st.metadata->>'companyId' = $3 AND cs.metadata->>'companyId' = $3 \
         ORDER BY cs.position DESC LIMIT 1",
    )
    .bind(transaction)
    .bind(charge_point)
    .bind(company.as_uuid().to_string());
    one(query, store).await
}

/// The protocol `charge_point` last connected with (1.6 when it never did),
/// from its `charger.connected` events.
pub(crate) async fn protocol_of(store: &EventStore, charge_point: &str) -> Result<OcppVersion, StoreError> {
    let protocol: Option<Option<String>> = sqlx::query_scalar(
        "SELECT payload->>'protocol' FROM events WHERE stream_id = $1 AND event_type = 'charger.connected' \
         ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(format!("charger-{charge_point}"))
    .fetch_optional(store.pool())
    .await?;
    Ok(protocol.flatten().map_or(OcppVersion::V16, |p| OcppVersion::from_protocol(&p)))
}
