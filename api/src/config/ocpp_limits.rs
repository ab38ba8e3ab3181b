//! `CHARGELEDGER_OCPP_*` abuse limits of the OCPP port (ADR 0017).

use std::time::Duration;

use gateways::ocpp::OcppLimits;

use super::{env, parse, ConfigError, FileConfig};

/// The limits from the environment, then the file, then the defaults.
pub(super) fn load(f: &FileConfig) -> Result<OcppLimits, ConfigError> {
    let mut l = OcppLimits::default();
    let u64_of = |name: &str, file: Option<u64>| -> Result<Option<u64>, ConfigError> {
        Ok(parse::<u64>(name, env(name))?.or(file))
    };
    let u32_of = |name: &str, file: Option<u32>| -> Result<Option<u32>, ConfigError> {
        Ok(parse::<u32>(name, env(name))?.or(file))
    };
    if let Some(ms) = u64_of("CHARGELEDGER_OCPP_HANDSHAKE_TIMEOUT_MS", f.ocpp_handshake_timeout_ms)? {
        l.handshake_timeout = Duration::from_millis(ms.max(100));
    }
    if let Some(n) = u64_of("CHARGELEDGER_OCPP_MAX_CONNECTIONS", f.ocpp_max_connections)? {
        l.max_connections = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    }
    if let Some(n) = u64_of("CHARGELEDGER_OCPP_MAX_PENDING_HANDSHAKES", f.ocpp_max_pending_handshakes)? {
        l.max_pending_handshakes = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    }
    if let Some(n) = u64_of("CHARGELEDGER_OCPP_PASSWORD_CHECKS", f.ocpp_password_checks)? {
        l.password_checks = usize::try_from(n.clamp(1, 256)).unwrap_or(1);
    }
    if let Some(s) = u64_of("CHARGELEDGER_OCPP_PASSWORD_CACHE_SECS", f.ocpp_password_cache_secs)? {
        l.password_cache_ttl = Duration::from_secs(s);
    }
    if let Some(s) = u64_of("CHARGELEDGER_OCPP_FAILURE_WINDOW_SECS", f.ocpp_failure_window_secs)? {
        l.failure_window = Duration::from_secs(s.max(1));
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_FAILURES_PER_ADDRESS", f.ocpp_failures_per_address)? {
        l.failures_per_address = n;
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_FAILURES_PER_ID", f.ocpp_failures_per_id)? {
        l.failures_per_id = n;
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_FRAMES_PER_SEC", f.ocpp_frames_per_sec)? {
        l.frames_per_sec = n;
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_FRAME_BURST", f.ocpp_frame_burst)? {
        l.frame_burst = n.max(1);
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_FLOOD_CLOSE_AFTER", f.ocpp_flood_close_after)? {
        l.flood_close_after = n;
    }
    if let Some(n) = u32_of("CHARGELEDGER_OCPP_REJECTIONS_LOGGED", f.ocpp_rejections_logged)? {
        l.rejections_logged = n;
    }
    if let Some(s) = u64_of("CHARGELEDGER_OCPP_REJECTION_INTERVAL_SECS", f.ocpp_rejection_interval_secs)? {
        l.rejection_interval = Duration::from_secs(s.max(1));
    }
    Ok(l)
}
