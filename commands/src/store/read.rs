//! Reading the log (by stream, in global order below the watermark), reader
//! checkpoints and the command log.

use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::{EventStore, RecordedEvent, StoreError, EVENT_COLUMNS, WATERMARK};

impl EventStore {
    /// Every event of a stream, in version order.
    pub async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
        let rows = sqlx::query(&sql).bind(stream_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(RecordedEvent::from_row).collect::<Result<_, _>>()?)
    }

    /// Position of the last event of a stream, if it has any.
    pub async fn stream_head(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT position FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1";
        Ok(sqlx::query_scalar(sql).bind(stream_id).fetch_optional(&self.pool).await?)
    }

    /// Version and hash of the last event of a stream (`(0, None)` when it has
    /// none): where the next append to it goes, without reading the stream.
    pub async fn stream_tip(&self, stream_id: &str) -> Result<(i64, Option<[u8; 32]>), StoreError> {
        let sql = "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1";
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sql).bind(stream_id).fetch_optional(&self.pool).await?;
        Ok(row.map_or((0, None), |(version, hash)| (version, hash.as_slice().try_into().ok())))
    }

    /// Up to `limit` events after `after` in global order, only below the
    /// watermark, so that nothing can later appear behind what was returned.
    pub async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND position < {WATERMARK} ORDER BY position LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(RecordedEvent::from_row).collect::<Result<_, _>>()?)
    }

    /// Whether committed events exist after `after` that the watermark still holds
    /// back (an older transaction is open): readers then poll briefly instead of
    /// waiting for a notification.
    pub async fn held_back_after(&self, after: i64) -> Result<bool, StoreError> {
        let held: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE position > $1)")
            .bind(after)
            .fetch_one(&self.pool)
            .await?;
        Ok(held)
    }

    /// The last readable position (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        let sql = format!("SELECT COALESCE(MAX(position), 0) FROM events WHERE position < {WATERMARK}");
        Ok(sqlx::query_scalar(&sql).fetch_one(&self.pool).await?)
    }

    /// The position a log reader named `name` has handled (0 before its first
    /// run). Readers outside the projector runtime (the session manager, the
    /// webhook scheduler, the Kafka relay) keep theirs in `projector_checkpoints`.
    pub async fn checkpoint(&self, name: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(position.unwrap_or(0))
    }

    /// Moves reader `name` to `position` (never backwards).
    pub async fn advance_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = GREATEST(projector_checkpoints.position, $2), updated_at = now()",
        )
        .bind(name)
        .bind(position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events readable after `after`, counted up to `cap`.
    pub async fn count_after(&self, after: i64, cap: i64) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 AND position < {WATERMARK} LIMIT $2) t"
        );
        Ok(sqlx::query_scalar(&sql).bind(after).bind(cap).fetch_one(&self.pool).await?)
    }

    /// The stored outcome of a command, with its request hash.
    pub async fn find_command(
        &self,
        company_id: Uuid,
        command_id: &str,
    ) -> Result<Option<(Vec<u8>, Value)>, StoreError> {
        let row =
            sqlx::query("SELECT request_hash, outcome FROM command_log WHERE company_id = $1 AND command_id = $2")
                .bind(company_id)
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("request_hash")?, row.try_get("outcome")?)),
            None => None,
        })
    }
}
