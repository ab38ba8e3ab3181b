//! Commands to chargers as event streams (`ocpp_command-<id>`): requested by
//! the API, sent and settled by the gateway that holds the charger's
//! connection. Optimistic concurrency on the stream decides races: a command
//! is sent at most once, and one the API gave up on is never sent later.

use chrono::{SubsecRound, Utc};
use domain::{
    charger::command::{command_stream_id, OcppCommandEvent, OcppCommandFailed, OcppCommandRequested},
    DomainEvent,
};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::{
    decision::{self, Stream},
    store::{EventStore, Metadata, RecordedEvent, StoreError},
    CommandContext, CommandError,
};

/// Where a command stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandStatus {
    /// Waiting to be sent.
    Pending,
    /// Sent, waiting for the answer.
    Sent,
    /// The charger's CALLRESULT payload.
    Answered(Value),
    /// It failed.
    Failed(OcppCommandFailed),
}

/// A command's request and status.
#[derive(Debug, Clone)]
pub struct CommandView {
    /// The request.
    pub request: OcppCommandRequested,
    /// Owning company.
    pub company_id: Option<Uuid>,
    /// Where the command stands: pending, sent, answered or failed.
    pub status: CommandStatus,
    /// Stream version (1 = requested only).
    pub version: i64,
}

/// The context of a write described by `metadata` (a route's or an
/// adapter's), for the command path.
fn context(metadata: &Metadata, command_type: &'static str) -> Result<CommandContext, CommandError> {
    Ok(CommandContext {
        company_id: metadata.company_id.ok_or(CommandError::Unscoped(command_type))?,
        command_id: metadata.command_id.clone(),
        request_hash: vec![],
        correlation_id: metadata.correlation_id,
        causation_id: metadata.causation_id,
        actor: metadata.actor.clone(),
    })
}

/// Appends a request through the command path. Returns the recorded event
/// (its position wakes the gateway).
pub async fn request(
    store: &EventStore,
    metadata: Metadata,
    request: OcppCommandRequested,
) -> Result<RecordedEvent, CommandError> {
    let stream = command_stream_id(request.command_id);
    let event = OcppCommandEvent::Requested(request);
    let ran = decision::run(
        store,
        &context(&metadata, "ocpp_command.request")?,
        "ocpp_command.request",
        vec![Stream::new_record(&stream)],
        |d| d.record(&stream, std::slice::from_ref(&event)),
        |_| Value::Null,
    )
    .await?;
    ran.events().last().cloned().ok_or(CommandError::NothingAppended("ocpp_command.request"))
}

/// Folds a command stream.
pub async fn view(store: &EventStore, command_id: Uuid) -> Result<Option<CommandView>, StoreError> {
    let events = store.read_stream(&command_stream_id(command_id)).await?;
    let mut view: Option<CommandView> = None;
    for recorded in &events {
        let Ok(event) = recorded.decode::<OcppCommandEvent>() else { continue };
        match (event, view.as_mut()) {
            (OcppCommandEvent::Requested(request), None) => {
                view = Some(CommandView {
                    request,
                    company_id: recorded.company_id(),
                    status: CommandStatus::Pending,
                    version: 1,
                })
            }
            (OcppCommandEvent::Sent(_), Some(v)) => v.status = CommandStatus::Sent,
            (OcppCommandEvent::Answered(a), Some(v)) => v.status = CommandStatus::Answered(a.response),
            (OcppCommandEvent::Failed(f), Some(v)) => v.status = CommandStatus::Failed(f),
            _ => {}
        }
        if let Some(v) = view.as_mut() {
            v.version = recorded.stream_version;
        }
    }
    Ok(view)
}

/// Records that a command failed, if it is still at `expected_version`.
/// Returns false when something else happened to it first.
pub async fn fail(
    store: &EventStore,
    command_id: Uuid,
    expected_version: i64,
    metadata: Metadata,
    reason: &str,
    error_code: Option<String>,
    description: Option<String>,
) -> Result<bool, CommandError> {
    let failed =
        OcppCommandFailed { reason: reason.into(), error_code, description, failed_at: Utc::now().trunc_subsecs(6) };
    let stream = command_stream_id(command_id);
    let event = OcppCommandEvent::Failed(failed);
    let ran = decision::run(
        store,
        &context(&metadata, "ocpp_command.fail")?,
        "ocpp_command.fail",
        vec![Stream::at(&stream, expected_version)],
        |d| d.record(&stream, std::slice::from_ref(&event)),
        |_| Value::Null,
    )
    .await;
    match ran {
        Ok(_) => Ok(true),
        Err(CommandError::Store(StoreError::Conflict { .. })) => Ok(false),
        Err(e) => Err(e),
    }
}

fn decode_request(payload: Value) -> Option<OcppCommandRequested> {
    match OcppCommandEvent::from_record("ocpp_command.requested", 1, payload) {
        Ok(OcppCommandEvent::Requested(r)) => Some(r),
        _ => None,
    }
}

/// Commands for a charger still waiting to be sent that asked for delivery on
/// reconnect, oldest first.
pub async fn pending_for(store: &EventStore, charge_point_id: &str) -> Result<Vec<OcppCommandRequested>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.payload FROM events e \
         WHERE e.event_type = 'ocpp_command.requested' AND e.payload->>'chargePointId' = $1 \
           AND (e.payload->>'deliverOnReconnect')::boolean \
           AND NOT EXISTS (SELECT 1 FROM events f WHERE f.stream_id = e.stream_id AND f.stream_version > 1) \
         ORDER BY e.position",
    )
    .bind(charge_point_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().filter_map(|r| r.try_get::<Value, _>("payload").ok()).filter_map(decode_request).collect())
}

/// Requests appended after `after`, up to the current readable head. Returns
/// the head (the next `after`) and the requests, oldest first.
pub async fn requested_after(store: &EventStore, after: i64) -> Result<(i64, Vec<OcppCommandRequested>), StoreError> {
    // Everything at or below the head is final (it is below the watermark).
    let head = store.head_position().await?;
    if head <= after {
        return Ok((after, vec![]));
    }
    let rows = sqlx::query(
        "SELECT payload FROM events WHERE position > $1 AND position <= $2 \
         AND event_type = 'ocpp_command.requested' ORDER BY position",
    )
    .bind(after)
    .bind(head)
    .fetch_all(store.pool())
    .await?;
    let requests =
        rows.into_iter().filter_map(|r| r.try_get::<Value, _>("payload").ok()).filter_map(decode_request).collect();
    Ok((head, requests))
}
