//! Charger password checks (ADR 0017): Argon2 on a small pool of dedicated
//! threads that each reuse one memory buffer, behind a semaphore, with a
//! short-lived cache of successful checks.
//!
//! `Argon2::verify_password` allocates the hash's whole memory (19 MiB with the
//! default parameters) on every call. Run on tokio's blocking pool (up to 512
//! threads), a burst of checks allocated that much per thread at once, and
//! glibc kept the freed memory in per-thread arenas: 200 chargers connecting
//! together held the process at 4.1 GB. Here at most `password_checks`
//! verifications run at once, each on its own thread's reused buffer, so the
//! memory of password checks is `password_checks` × the hash's memory, for
//! the life of the process, whatever the storm.

use std::{
    collections::HashMap,
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use argon2::{password_hash::Output, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// The largest Argon2 memory a stored hash may ask for (KiB); a hash asking
/// more is refused rather than allocated.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// Entries of the cache of successful checks (one per charger).
const MAX_CACHED: usize = 200_000;

struct Job {
    password: String,
    phc: String,
    /// Held until the verification is done, even when the handshake that
    /// asked gave up: the semaphore bounds work, not waiters.
    _permit: OwnedSemaphorePermit,
    reply: oneshot::Sender<bool>,
    /// Where a success is remembered (charger id and cache tag).
    remember: Option<(String, [u8; 32])>,
}

struct Cached {
    tag: [u8; 32],
    until: Instant,
}

struct Shared {
    /// HMAC-SHA256 keyed with 32 random bytes drawn at start; `None` (never in
    /// practice) disables the cache.
    mac: Option<Hmac<Sha256>>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Shared {
    /// HMAC-SHA256 under a per-process random key of (id, stored hash,
    /// password): a changed stored hash (a rotation) never matches an old entry.
    fn tag(&self, id: &str, phc: &str, password: &str) -> Option<[u8; 32]> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut mac = self.mac.clone()?;
        for part in [id, phc, password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        Some(mac.finalize().into_bytes().into())
    }

    fn remember(&self, id: String, tag: [u8; 32]) {
        let now = Instant::now();
        let Ok(mut cache) = self.cache.lock() else { return };
        if cache.len() >= MAX_CACHED && !cache.contains_key(&id) {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= MAX_CACHED {
                return;
            }
        }
        cache.insert(id, Cached { tag, until: now + self.ttl });
    }

    fn recall(&self, id: &str, tag: &[u8; 32]) -> bool {
        let Ok(cache) = self.cache.lock() else { return false };
        cache.get(id).is_some_and(|c| c.until > Instant::now() && constant_time_eq(&c.tag, tag))
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The password checker of one gateway.
pub(crate) struct PasswordChecker {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// How a password check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Right, from the cache of recent successes.
    Remembered,
    /// Right, verified by Argon2.
    Verified,
    /// Wrong (or the stored hash is unusable).
    Wrong,
}

impl PasswordChecker {
    /// Starts `threads` verification threads.
    pub(crate) fn start(threads: usize, ttl: Duration) -> Self {
        let threads = threads.max(1);
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok();
        let shared = Arc::new(Shared { mac, ttl, cache: Mutex::new(HashMap::new()) });
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let (rx, shared) = (rx.clone(), shared.clone());
            let spawned =
                std::thread::Builder::new().name(format!("ocpp-argon2-{n}")).spawn(move || worker(&rx, &shared));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password-check thread");
            }
        }
        Self { permits: Arc::new(Semaphore::new(threads)), jobs, shared }
    }

    /// Whether `password` for charger `id` was verified against `phc` within the
    /// cache's lifetime (an HMAC, no Argon2 work).
    pub(crate) fn remembered(&self, id: &str, password: &str, phc: &str) -> bool {
        self.shared.tag(id, phc, password).is_some_and(|tag| self.shared.recall(id, &tag))
    }

    /// Checks `password` for charger `id` against its stored PHC string.
    pub(crate) async fn check(&self, id: &str, password: String, phc: String) -> Checked {
        let tag = self.shared.tag(id, &phc, &password);
        if tag.is_some_and(|tag| self.shared.recall(id, &tag)) {
            return Checked::Remembered;
        }
        let Ok(permit) = self.permits.clone().acquire_owned().await else { return Checked::Wrong };
        let (reply, answer) = oneshot::channel();
        let job = Job { password, phc, _permit: permit, reply, remember: tag.map(|tag| (id.to_owned(), tag)) };
        if self.jobs.send(job).is_err() {
            tracing::error!("no password-check thread is running");
            return Checked::Wrong;
        }
        match answer.await {
            Ok(true) => Checked::Verified,
            _ => Checked::Wrong,
        }
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>, shared: &Shared) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let ok = verify(&job.password, &job.phc, &mut memory);
        if ok {
            if let Some((id, tag)) = job.remember {
                shared.remember(id, tag);
            }
        }
        let _ = job.reply.send(ok);
    }
}

/// Verifies with the parameters the PHC string carries, in `memory` (grown
/// once to the largest hash seen, then reused).
pub(crate) fn verify(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm), Params::try_from(&hash)) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    if params.m_cost() > MAX_M_COST_KIB {
        tracing::warn!(m_cost = params.m_cost(), "a stored charger password hash asks for too much memory");
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    let computed = argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..]);
    computed.is_ok() && Output::new(out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use argon2::{password_hash::SaltString, PasswordHasher};

    use super::*;

    fn phc(password: &str, params: Params) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn verifies_with_the_stored_parameters_in_reused_memory() {
        let small = phc("right", Params::new(1024, 1, 1, None).unwrap());
        let default = phc("right", Params::default());
        let mut memory = Vec::new();
        assert!(verify("right", &small, &mut memory));
        assert_eq!(memory.len(), 1024);
        assert!(!verify("wrong", &small, &mut memory));
        assert!(verify("right", &default, &mut memory));
        assert_eq!(memory.len(), 19 * 1024, "grown once to the largest hash");
        assert!(verify("right", &small, &mut memory), "a smaller hash in a larger buffer");
        assert!(!verify("right", "not a hash", &mut memory));
    }

    #[tokio::test]
    async fn a_success_is_remembered_until_the_hash_changes() {
        let checker = PasswordChecker::start(1, Duration::from_secs(60));
        let first = phc("right", Params::new(1024, 1, 1, None).unwrap());
        assert_eq!(checker.check("A", "wrong".into(), first.clone()).await, Checked::Wrong);
        assert_eq!(checker.check("A", "right".into(), first.clone()).await, Checked::Verified);
        assert_eq!(checker.check("A", "right".into(), first.clone()).await, Checked::Remembered);
        assert_eq!(checker.check("A", "wrong".into(), first.clone()).await, Checked::Wrong);
        assert_eq!(checker.check("B", "right".into(), first).await, Checked::Verified, "per charger");
        let rotated = phc("new", Params::new(1024, 1, 1, None).unwrap());
        assert_eq!(checker.check("A", "right".into(), rotated.clone()).await, Checked::Wrong);
        assert_eq!(checker.check("A", "new".into(), rotated).await, Checked::Verified);
    }
}
