//! One command through the path: replay, load, decide, append, and again
//! after a jittered pause when another writer got there first.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::{Decision, Ran, SideWrite, Slot, Stream, MAX_ATTEMPTS, MAX_BACKOFF};
use crate::{
    handler::{CommandContext, CommandError},
    store::{CommandRecord, EventStore, ExpectedVersion, Metadata, RecordedEvent, StoreError, StreamWrite},
};

async fn load(store: &EventStore, streams: &mut [Stream]) -> Result<Decision, CommandError> {
    let mut slots = Vec::with_capacity(streams.len());
    for stream in streams.iter_mut() {
        let (state, version, hash) = match (stream.fixed, stream.known.take()) {
            // Never re-read: the version it must be at is the point.
            (Some(version), _) => ((stream.fold)(&[])?, version, None),
            (None, Some(known)) => known,
            (None, None) if stream.new => ((stream.fold)(&[])?, 0, None),
            (None, None) if stream.tip_only => {
                let (version, hash) = store.stream_tip(&stream.id).await?;
                ((stream.fold)(&[])?, version, hash)
            }
            (None, None) => {
                let recorded = store.read_stream(&stream.id).await?;
                let version = recorded.last().map_or(0, |r| r.stream_version);
                ((stream.fold)(&recorded)?, version, recorded.last().map(RecordedEvent::hash_array))
            }
        };
        let expected = if stream.new { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        slots.push(Slot {
            id: stream.id.clone(),
            version,
            expected,
            hash,
            state,
            events: vec![],
            metadata: stream.metadata.clone(),
        });
    }
    Ok(Decision { slots, side: vec![] })
}

/// The pause before attempt `attempt` (1-based retries): full jitter over a
/// window that doubles per attempt, so contenders stop colliding.
fn backoff(attempt: u32) -> Duration {
    let window = Duration::from_micros(250u64 << attempt.min(8)).min(MAX_BACKOFF);
    let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(rand::random::<u64>() % micros)
}

/// The command's id: the caller's (Idempotency-Key, OCPP message, a process
/// manager's deterministic id) or a fresh one, so every write is in `command_log`.
fn command_id(ctx: &CommandContext) -> (String, bool) {
    match &ctx.command_id {
        Some(id) => (id.clone(), true),
        None => (Uuid::now_v7().to_string(), false),
    }
}

/// Runs one command: load `streams`, `decide`, append with the command id;
/// again on a concurrent change. `answer` renders what is stored with the
/// command id (and returned to a repeat of it).
pub async fn run<T>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, CommandError>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, CommandError> {
    run_as(store, ctx, command_type, streams, decide, answer).await
}

/// [`run`] with the caller's error type: a refusal converts into it, and the
/// path's own failures (the log, a mismatched command id) arrive as
/// [`CommandError`] converted into it too.
pub async fn run_as<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, E> {
    run_inner(store, ctx, command_type, streams, decide, answer, true).await
}

/// [`run_as`] for commands whose ids repeat rarely (a charger's messages,
/// each under its own message id): no look-up in `command_log` before
/// deciding. A repeat is still caught, by the append's unique command id, and
/// answered with the first outcome, so only its cost moves to the rare case.
pub async fn run_optimistic_as<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, E> {
    run_inner(store, ctx, command_type, streams, decide, answer, false).await
}

async fn run_inner<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    mut streams: Vec<Stream>,
    mut decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
    look_first: bool,
) -> Result<Ran<T>, E> {
    let (id, repeatable) = command_id(ctx);
    if repeatable && look_first {
        if let Some(answer) = replay(store, ctx, &id).await? {
            return Ok(Ran::Replayed(answer));
        }
    }
    let metadata = Metadata { command_id: Some(id.clone()), ..ctx.metadata() };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
            // What the caller knew is stale now: read every stream from the log
            // (a fixed-version stream is never read: see `load`).
            for stream in &mut streams {
                stream.known = None;
            }
        }
        let mut decision = load(store, &mut streams).await.map_err(E::from)?;
        let value = match decide(&mut decision) {
            Ok(value) => value,
            Err(refusal) => {
                // A concurrent duplicate may have committed since we looked:
                // its outcome, not a refusal of the state it produced, is the answer.
                if repeatable {
                    if let Some(answer) = replay(store, ctx, &id).await? {
                        return Ok(Ran::Replayed(answer));
                    }
                }
                return Err(refusal);
            }
        };
        let stored = answer(&value);
        let writes = decision.take_writes(&metadata);
        // Nothing to append: only a caller-given id is still recorded, so a
        // repeat (or a concurrent duplicate) gets this answer, not another
        // decision. A charger's (optimistic) command that decided nothing
        // records nothing: its id is fresh, or it has frames to write.
        if writes.is_empty() && decision.side.is_empty() && (!repeatable || !look_first) {
            return Ok(Ran::Decided { value, answer: stored, events: vec![] });
        }
        let record = CommandRecord {
            company_id: ctx.company_id,
            command_id: id.clone(),
            command_type: command_type.to_owned(),
            request_hash: ctx.request_hash.clone(),
            outcome: stored.clone(),
        };
        let appended = if decision.side.is_empty() {
            store.append(&writes, Some(&record)).await
        } else {
            append_with_side_writes(store, &writes, &record, std::mem::take(&mut decision.side)).await
        };
        match appended {
            Ok(events) => return Ok(Ran::Decided { value, answer: stored, events }),
            Err(conflict @ StoreError::Conflict { .. })
                if streams.iter().any(|s| {
                    s.fixed.is_some()
                        && matches!(&conflict, StoreError::Conflict { stream_id, .. } if *stream_id == s.id)
                }) =>
            {
                return Err(CommandError::from(conflict).into())
            }
            Err(StoreError::Conflict { .. } | StoreError::OrderConflict { .. } | StoreError::Deadlock { .. }) => {}
            Err(StoreError::DuplicateCommand(_)) if repeatable => {}
            Err(other) => return Err(CommandError::from(other).into()),
        }
        if repeatable {
            if let Some(answer) = replay(store, ctx, &id).await? {
                return Ok(Ran::Replayed(answer));
            }
        }
    }
    Err(CommandError::TooMuchContention(streams.first().map(|s| s.id.clone()).unwrap_or_default()).into())
}

async fn append_with_side_writes(
    store: &EventStore,
    writes: &[StreamWrite],
    record: &CommandRecord,
    side: Vec<SideWrite>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut tx = store.begin().await?;
    let recorded = tx.append_all(writes, Some(record)).await?;
    for write in side {
        write(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

async fn replay<E: From<CommandError>>(store: &EventStore, ctx: &CommandContext, id: &str) -> Result<Option<Value>, E> {
    match store.find_command(ctx.company_id, id).await.map_err(CommandError::from)? {
        Some((hash, _)) if hash != ctx.request_hash => Err(CommandError::IdempotencyMismatch(id.to_owned()).into()),
        Some((_, outcome)) => Ok(Some(outcome)),
        None => Ok(None),
    }
}
