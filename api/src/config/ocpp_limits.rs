//! `CHARGELEDGER_OCPP_*` abuse limits of the OCPP port (ADR 0017).

use std::time::Duration;

use gateways::ocpp::OcppLimits;

use super::Settings;

/// The limits of `s`, with the bounds they always had.
pub(super) fn from_settings(s: &Settings) -> OcppLimits {
    let size = |n: u64| usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    OcppLimits {
        handshake_timeout: Duration::from_millis(s.ocpp_handshake_timeout_ms.max(100)),
        max_connections: size(s.ocpp_max_connections),
        max_pending_handshakes: size(s.ocpp_max_pending_handshakes),
        // Unset: the gateway's own default, the number of cores.
        password_checks: s
            .ocpp_password_checks
            .map_or(OcppLimits::default().password_checks, |n| size(n.clamp(1, 256))),
        password_cache_ttl: Duration::from_secs(s.ocpp_password_cache_secs),
        failure_window: Duration::from_secs(s.ocpp_failure_window_secs.max(1)),
        failures_per_address: s.ocpp_failures_per_address,
        failures_per_id: s.ocpp_failures_per_id,
        frames_per_sec: s.ocpp_frames_per_sec,
        frame_burst: s.ocpp_frame_burst.max(1),
        flood_close_after: s.ocpp_flood_close_after,
        rejections_logged: s.ocpp_rejections_logged,
        rejection_interval: Duration::from_secs(s.ocpp_rejection_interval_secs.max(1)),
    }
}
