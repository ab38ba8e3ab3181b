//! The frame-rate limit of a connection and the summary of rejections not
//! recorded one by one (ADR 0017). Kept apart from the frame handling: the
//! connection calls [`Conn::admit`] for each frame, asks
//! [`Conn::record_rejection`] before it records a refused frame, and
//! [`Conn::flush_rejections`] on its ping tick and when it closes.

use axum::extract::ws::WebSocket;
use domain::charger::{FrameRejectionsSummarized, OcppFrameEvent};

use super::{close, now, Conn};
use crate::ocpp::{
    frame::{self, ErrorCode, Frame},
    limits::Admission,
};

impl Conn {
    /// Whether to handle a frame that just arrived. A frame over the rate is
    /// refused with a CALLERROR here (`Ok(false)`); a persisting flood closes
    /// the connection (1008, `Err`).
    pub(super) async fn admit(&mut self, socket: &mut WebSocket, raw: &str) -> Result<bool, String> {
        self.flush_rejections(false).await;
        let admission = self.limiter.admit();
        if admission == Admission::Admit {
            return Ok(true);
        }
        let per_sec = self.gateway.inner.config.limits.frames_per_sec;
        let description = format!("rate limit: more than {per_sec} frames per second; slow down");
        let (id, type_id, action) = match frame::parse(raw) {
            Ok(Frame::Call { id, action, .. }) => (Some(id), Some(2), Some(action)),
            Ok(other) => (Some(other.id().to_owned()), Some(other.type_id()), None),
            Err(error) => (error.id, error.type_id, error.action),
        };
        let error = frame::FrameError { id, type_id, action, code: ErrorCode::GenericError, description };
        self.reject(socket, raw.to_owned(), error).await?;
        if admission == Admission::Close {
            let _ = socket.send(close(1008, "frame flood")).await;
            let limit = self.gateway.inner.config.limits.flood_close_after;
            return Err(format!("frame flood: more than {limit} frames over the rate limit in one interval"));
        }
        Ok(false)
    }

    /// Whether a refused frame of `bytes` answered with `code` is recorded on
    /// its own; otherwise it is counted for the next summary.
    pub(super) fn record_rejection(&mut self, code: &str, bytes: usize) -> bool {
        self.limiter.record_rejection(code, bytes, now())
    }

    /// Records the counted rejections when their interval is over, or now
    /// (`force`, the connection ends).
    pub(super) async fn flush_rejections(&mut self, force: bool) {
        let Some(pending) = self.limiter.due(force) else { return };
        let summary = FrameRejectionsSummarized {
            connection_id: self.connection_id,
            protocol: self.version,
            count: pending.count,
            by_code: pending.by_code.clone(),
            over_rate: pending.over_rate,
            bytes: pending.bytes,
            first_at: pending.first_at,
            last_at: pending.last_at,
        };
        let event = OcppFrameEvent::RejectionsSummarized(summary);
        if let Err(error) = self.append(super::append::Append::frames("ocpp.rejections_summarized", &[event])).await {
            tracing::error!(charger = %self.id, %error, "could not record the summary of rejected frames");
            let _ = self.reload().await;
            if !force {
                self.limiter.restore(pending);
            }
        }
    }
}
