//! Abuse limits of the OCPP port (ADR 0017): caps on sockets, failed
//! handshakes per source address and per charger id, and the per-connection
//! frame rate with the bounded recording of rejected frames.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

/// The limits, part of [`super::OcppConfig`] (`CHARGELEDGER_OCPP_*`).
#[derive(Debug, Clone)]
pub struct OcppLimits {
    /// TCP accept → TLS → HTTP upgrade complete must take less than this, or
    /// the socket is closed.
    pub handshake_timeout: Duration,
    /// Sockets open at once (handshaking or connected); beyond it new sockets
    /// are closed at once.
    pub max_connections: usize,
    /// Sockets still handshaking at once; beyond it new sockets are closed at once.
    pub max_pending_handshakes: usize,
    /// Argon2 verifications at once (each holds the hash's memory, 19 MiB by default).
    pub password_checks: usize,
    /// How long a verified password is accepted again without Argon2 (zero: never).
    pub password_cache_ttl: Duration,
    /// Window of the failed-handshake counters.
    pub failure_window: Duration,
    /// Failed handshakes per source address (IPv6: per /64) in a window before
    /// it gets 429 (zero: no limit).
    pub failures_per_address: u32,
    /// Failed password checks per charger id in a window before its upgrades
    /// get 429 (zero: no limit).
    pub failures_per_id: u32,
    /// Frames per second a connection may send, sustained (zero: no limit).
    pub frames_per_sec: u32,
    /// Frames a connection may send in a burst above the sustained rate.
    pub frame_burst: u32,
    /// Frames refused for the rate within one rejection interval that close the
    /// connection (1008).
    pub flood_close_after: u32,
    /// Rejected frames recorded one by one per rejection interval; the rest are
    /// counted in one `ocpp.frame_rejections_summarized` event per interval.
    pub rejections_logged: u32,
    /// The rejection interval.
    pub rejection_interval: Duration,
}

impl Default for OcppLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            max_pending_handshakes: 1_000,
            password_checks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            password_cache_ttl: Duration::from_secs(300),
            failure_window: Duration::from_secs(60),
            failures_per_address: 30,
            failures_per_id: 10,
            frames_per_sec: 10,
            frame_burst: 100,
            flood_close_after: 200,
            rejections_logged: 20,
            rejection_interval: Duration::from_secs(60),
        }
    }
}

/// Counters kept per key are bounded: a flood of new addresses or ids cannot
/// grow them without limit (expired windows are pruned first).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug)]
struct Counters<K> {
    windows: HashMap<K, Window>,
}

impl<K> Default for Counters<K> {
    fn default() -> Self {
        Self { windows: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Counters<K> {
    /// Time left until `key` may try again, if it is over `limit`.
    fn blocked(&self, key: &K, limit: u32, window: Duration, now: Instant) -> Option<Duration> {
        let w = self.windows.get(key)?;
        let end = w.start + window;
        (limit > 0 && w.count >= limit && now < end).then(|| end - now)
    }

    fn count(&mut self, key: K, window: Duration, now: Instant) {
        if self.windows.len() >= MAX_KEYS && !self.windows.contains_key(&key) {
            self.windows.retain(|_, w| now < w.start + window);
            if self.windows.len() >= MAX_KEYS {
                // Full of live windows (someone spreading failures over many
                // addresses or ids): the oldest gives way, so a new key is
                // still counted and limited rather than let through untracked.
                let oldest = self.windows.iter().min_by_key(|(_, w)| w.start).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.windows.remove(&oldest);
                }
            }
        }
        let w = self.windows.entry(key).or_insert(Window { start: now, count: 0 });
        if now >= w.start + window {
            *w = Window { start: now, count: 0 };
        }
        w.count = w.count.saturating_add(1);
    }
}

/// The key of a source address: IPv4 as is, IPv6 by its /64 (one subscriber).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

/// Failed handshakes per source address and per charger id.
#[derive(Debug, Default)]
pub(crate) struct FailedHandshakes {
    by_address: Mutex<Counters<IpAddr>>,
    by_id: Mutex<Counters<String>>,
}

impl FailedHandshakes {
    /// How long the caller must wait, if the address or the id is over its limit.
    pub(crate) fn blocked(&self, limits: &OcppLimits, ip: IpAddr, id: &str) -> Option<Duration> {
        let now = Instant::now();
        let window = limits.failure_window;
        let by_address = self
            .by_address
            .lock()
            .ok()
            .and_then(|c| c.blocked(&address_key(ip), limits.failures_per_address, window, now));
        let by_id = self.by_id.lock().ok().and_then(|c| c.blocked(&id.to_owned(), limits.failures_per_id, window, now));
        by_address.max(by_id)
    }

    /// Counts a refused upgrade against the address, and against the id when
    /// its password was missing or wrong.
    pub(crate) fn failed(&self, limits: &OcppLimits, ip: IpAddr, password_of: Option<&str>) {
        let now = Instant::now();
        if let Ok(mut c) = self.by_address.lock() {
            c.count(address_key(ip), limits.failure_window, now);
        }
        if let (Some(id), Ok(mut c)) = (password_of, self.by_id.lock()) {
            c.count(id.to_owned(), limits.failure_window, now);
        }
    }
}

/// What the frame limiter says about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Handle it.
    Admit,
    /// Refuse it (CALLERROR for a CALL).
    OverRate,
    /// Refuse it and close the connection: the flood persists.
    Close,
}

/// Limiters of chargers that disconnected, kept until their interval is over:
/// a charger that reconnects gets its budget back where it left it, so a
/// connect → junk frames → disconnect loop cannot reset the bound on what
/// the log records of it.
#[derive(Debug, Default)]
pub(crate) struct ParkedLimiters {
    parked: Mutex<HashMap<String, FrameLimiter>>,
}

/// Parked limiters at most (a bound on memory; idle ones are dropped first).
const MAX_PARKED: usize = 100_000;

impl ParkedLimiters {
    /// The charger's limiter as its last connection left it, or a fresh one.
    pub(crate) fn take(&self, id: &str, limits: &OcppLimits) -> FrameLimiter {
        let parked = self.parked.lock().ok().and_then(|mut p| p.remove(id));
        parked.unwrap_or_else(|| FrameLimiter::new(limits))
    }

    /// Keeps a closed connection's limiter while its interval still counts.
    pub(crate) fn park(&self, id: &str, limiter: FrameLimiter) {
        let now = Instant::now();
        if limiter.idle(now) {
            return;
        }
        let Ok(mut parked) = self.parked.lock() else { return };
        if parked.len() >= MAX_PARKED {
            parked.retain(|_, l| !l.idle(now));
        }
        if parked.len() < MAX_PARKED {
            parked.insert(id.to_owned(), limiter);
        }
    }
}

/// The per-connection frame rate (a token bucket) and the bounded recording of
/// rejected frames.
#[derive(Debug)]
pub(crate) struct FrameLimiter {
    limits: OcppLimits,
    /// Tokens, in thousandths of a frame.
    tokens_milli: u64,
    refilled: Instant,
    interval_start: Instant,
    over_rate_in_interval: u32,
    logged_in_interval: u32,
    /// Whether the last frame admitted or refused was over the rate.
    last_over_rate: bool,
    pending: Option<Pending>,
}

/// Rejections counted but not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// How many.
    pub count: i64,
    /// Per error code.
    pub by_code: BTreeMap<String, i64>,
    /// Refused for the rate.
    pub over_rate: i64,
    /// Total raw size of the counted frames, in bytes.
    pub bytes: i64,
    /// First arrival.
    pub first_at: DateTime<Utc>,
    /// Last arrival.
    pub last_at: DateTime<Utc>,
}

impl FrameLimiter {
    pub(crate) fn new(limits: &OcppLimits) -> Self {
        let now = Instant::now();
        Self {
            limits: limits.clone(),
            tokens_milli: u64::from(limits.frame_burst.max(1)) * 1000,
            refilled: now,
            interval_start: now,
            over_rate_in_interval: 0,
            logged_in_interval: 0,
            last_over_rate: false,
            pending: None,
        }
    }

    /// Whether nothing of the current interval is left to remember: a fresh
    /// limiter would behave the same from now on.
    fn idle(&self, now: Instant) -> bool {
        self.pending.is_none()
            && now >= self.interval_start + self.limits.rejection_interval
            && self.over_rate_in_interval == 0
            && self.logged_in_interval == 0
    }

    fn roll(&mut self, now: Instant) {
        if now >= self.interval_start + self.limits.rejection_interval {
            self.interval_start = now;
            self.over_rate_in_interval = 0;
            self.logged_in_interval = 0;
        }
    }

    /// Takes a token for a frame that just arrived.
    pub(crate) fn admit(&mut self) -> Admission {
        self.last_over_rate = false;
        if self.limits.frames_per_sec == 0 {
            return Admission::Admit;
        }
        let now = Instant::now();
        self.roll(now);
        let capacity = u64::from(self.limits.frame_burst.max(1)) * 1000;
        let elapsed_ms = u64::try_from(now.duration_since(self.refilled).as_millis()).unwrap_or(u64::MAX);
        let refill = elapsed_ms.saturating_mul(u64::from(self.limits.frames_per_sec));
        if refill > 0 {
            self.tokens_milli = self.tokens_milli.saturating_add(refill).min(capacity);
            self.refilled = now;
        }
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            return Admission::Admit;
        }
        self.last_over_rate = true;
        self.over_rate_in_interval = self.over_rate_in_interval.saturating_add(1);
        if self.over_rate_in_interval > self.limits.flood_close_after {
            Admission::Close
        } else {
            Admission::OverRate
        }
    }

    /// Whether a rejected frame (the last one given to [`Self::admit`]) is
    /// recorded on its own; if not, it is counted for the next summary.
    pub(crate) fn record_rejection(&mut self, code: &str, bytes: usize, at: DateTime<Utc>) -> bool {
        let over_rate = self.last_over_rate;
        self.roll(Instant::now());
        if self.logged_in_interval < self.limits.rejections_logged {
            self.logged_in_interval += 1;
            return true;
        }
        let p = self.pending.get_or_insert_with(|| Pending {
            count: 0,
            by_code: BTreeMap::new(),
            over_rate: 0,
            bytes: 0,
            first_at: at,
            last_at: at,
        });
        p.count += 1;
        *p.by_code.entry(code.to_owned()).or_insert(0) += 1;
        p.over_rate += i64::from(over_rate);
        p.bytes = p.bytes.saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
        p.last_at = at;
        false
    }

    /// The counted rejections to record now: when the interval they started in
    /// is over, or `force` (the connection ends).
    pub(crate) fn due(&mut self, force: bool) -> Option<Pending> {
        let now = Instant::now();
        let over = now >= self.interval_start + self.limits.rejection_interval;
        if force || over {
            self.roll(now);
            return self.pending.take();
        }
        None
    }

    /// Puts back a summary that could not be recorded.
    pub(crate) fn restore(&mut self, pending: Pending) {
        self.pending = Some(pending);
    }
}

#[cfg(test)]
mod tests;
