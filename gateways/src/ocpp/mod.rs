//! The OCPP gateway: a WebSocket CSMS for OCPP 1.6-J and 2.0.1 at
//! `ws://HOST:PORT/ocpp/{chargePointId}`.
//!
//! Every frame in and out is an event on the charger's `ocpp-<id>` stream,
//! appended before anything is answered; what the frames mean (boot, connector
//! status, transactions, meter readings) goes to its `charger-<id>` stream in
//! the same transaction. Commands to chargers are streams of their own
//! (`ocpp_command-<id>`), picked up by the gateway that holds the connection.
//! The port defends itself ([`limits`], ADR 0017).

mod accept;
mod connection;
pub mod frame;
mod handshake;
pub mod limits;
pub mod messages;
mod passwords;
pub mod schema;
/// TLS for security profile 2: the certificate chain and key the gateway presents.
pub mod tls;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use axum::{routing::get, Router};
use commands::EventStore;
use domain::{charger::command::OcppCommandRequested, terminal::OcppVersion, TerminalId};
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::limits::OcppLimits;
use self::{
    handshake::upgrade,
    limits::{FailedHandshakes, ParkedLimiters},
    passwords::PasswordChecker,
};

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct OcppConfig {
    /// Listen address (`CHARGELEDGER_OCPP_ADDR`).
    pub addr: SocketAddr,
    /// Largest frame accepted; a larger one closes the connection (1009).
    pub max_frame_bytes: usize,
    /// WebSocket ping cadence; two silent intervals close the connection.
    pub ping_interval: Duration,
    /// How long a command waits for the charger's answer by default.
    pub call_timeout: Duration,
    /// Heartbeat interval told to chargers at boot.
    pub heartbeat_interval_s: i64,
    /// Company that unknown chargers are registered to (none: refuse them).
    pub auto_register_company: Option<Uuid>,
    /// This gateway instance.
    pub gateway_id: Uuid,
    /// PEM certificate chain and private key: serve `wss://` (security profile 2).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Abuse limits of the port.
    pub limits: OcppLimits,
}

impl OcppConfig {
    /// Defaults on the given address.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            max_frame_bytes: 64 * 1024,
            ping_interval: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            heartbeat_interval_s: 300,
            auto_register_company: None,
            gateway_id: Uuid::now_v7(),
            tls: None,
            limits: OcppLimits::default(),
        }
    }
}

/// What the gateway needs to know of a registered charger.
#[derive(Debug, Clone)]
pub struct ChargerRecord {
    /// The company the charger is registered to; its events are scoped to it.
    pub company_id: Uuid,
    /// Argon2 hash of its basic-auth password, if it has one.
    pub password_hash: Option<String>,
}

/// Where chargers are registered (the terminals read model, in the binary).
#[async_trait]
pub trait ChargerDirectory: Send + Sync + 'static {
    /// The charger, if registered.
    async fn find(&self, id: &TerminalId) -> Result<Option<ChargerRecord>, commands::CommandError>;
    /// Registers an unknown charger to `company` (auto-registration).
    async fn auto_register(
        &self,
        id: &TerminalId,
        company: Uuid,
        version: OcppVersion,
    ) -> Result<ChargerRecord, commands::CommandError>;
}

/// A command handed to the connection that holds its charger.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub request: OcppCommandRequested,
}

/// A live connection in the registry.
struct Live {
    connection_id: Uuid,
    cancel: CancellationToken,
    done: Option<oneshot::Receiver<()>>,
    outbound: mpsc::UnboundedSender<Outbound>,
}

struct Inner {
    store: EventStore,
    config: OcppConfig,
    directory: Arc<dyn ChargerDirectory>,
    live: Mutex<HashMap<String, Live>>,
    passwords: PasswordChecker,
    failures: FailedHandshakes,
    parked: ParkedLimiters,
}

/// The gateway: shared by the HTTP upgrade handler, the connections and the
/// command dispatcher.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("addr", &self.inner.config.addr).finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over the log.
    pub fn new(store: EventStore, config: OcppConfig, directory: Arc<dyn ChargerDirectory>) -> Self {
        let passwords = PasswordChecker::start(config.limits.password_checks, config.limits.password_cache_ttl);
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                directory,
                live: Mutex::new(HashMap::new()),
                passwords,
                failures: FailedHandshakes::default(),
                parked: ParkedLimiters::default(),
            }),
        }
    }

    /// The settings the gateway was started with.
    pub fn config(&self) -> &OcppConfig {
        &self.inner.config
    }

    /// Whether this gateway holds a connection for the charger.
    pub fn is_connected(&self, id: &str) -> bool {
        self.inner.live.lock().map(|m| m.contains_key(id)).unwrap_or(false)
    }

    /// Number of live connections.
    pub fn connections(&self) -> usize {
        self.inner.live.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Hands a command to the charger's connection, if it is here.
    pub(crate) fn hand_over(&self, request: OcppCommandRequested) -> bool {
        let Ok(live) = self.inner.live.lock() else { return false };
        match live.get(&request.charge_point_id) {
            Some(l) => l.outbound.send(Outbound { request }).is_ok(),
            None => false,
        }
    }

    /// Registers a new connection, closing the one it replaces first.
    async fn attach(
        &self,
        id: &str,
        connection_id: Uuid,
        outbound: mpsc::UnboundedSender<Outbound>,
    ) -> (CancellationToken, oneshot::Sender<()>) {
        let cancel = CancellationToken::new();
        let (done_tx, done_rx) = oneshot::channel();
        let previous = self.inner.live.lock().ok().and_then(|mut m| {
            m.insert(id.to_owned(), Live { connection_id, cancel: cancel.clone(), done: Some(done_rx), outbound })
        });
        if let Some(mut old) = previous {
            old.cancel.cancel();
            if let Some(done) = old.done.take() {
                // Let it record its disconnection before we record our connection.
                let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
            }
        }
        (cancel, done_tx)
    }

    fn detach(&self, id: &str, connection_id: Uuid) {
        if let Ok(mut live) = self.inner.live.lock() {
            if live.get(id).is_some_and(|l| l.connection_id == connection_id) {
                live.remove(id);
            }
        }
    }

    /// The WebSocket router (`/ocpp/{chargePointId}`).
    pub fn router(&self) -> Router {
        Router::new().route("/ocpp/{id}", get(upgrade)).with_state(self.clone())
    }

    /// Binds the listener (and compiles the OCPP schemas, so the first charger does not wait).
    pub async fn bind(&self) -> std::io::Result<(SocketAddr, TcpListener)> {
        tokio::task::spawn_blocking(schema::warm).await.ok();
        let listener = TcpListener::bind(self.inner.config.addr).await?;
        Ok((listener.local_addr()?, listener))
    }

    /// Serves connections and dispatches commands until shutdown; then closes
    /// every connection, recording each disconnection.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
        let acceptor = match &self.inner.config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key).map_err(std::io::Error::other)?),
            None => None,
        };
        let dispatcher = tokio::spawn(dispatch(self.clone(), shutdown.clone()));
        accept::serve(self.router(), listener, acceptor, &self.inner.config.limits, shutdown.clone()).await;
        let lives: Vec<(CancellationToken, Option<oneshot::Receiver<()>>)> = self
            .inner
            .live
            .lock()
            .map(|mut m| m.values_mut().map(|l| (l.cancel.clone(), l.done.take())).collect())
            .unwrap_or_default();
        for (cancel, done) in lives {
            cancel.cancel();
            if let Some(done) = done {
                let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
            }
        }
        dispatcher.abort();
        Ok(())
    }
}

/// Hands each new command request to the connection holding its charger.
async fn dispatch(gateway: Gateway, shutdown: CancellationToken) {
    let store = gateway.inner.store.clone();
    let mut wakeups = store.subscribe();
    let mut after = store.head_position().await.unwrap_or(0);
    loop {
        wakeups.mark_unchanged();
        match commands::ocpp_commands::requested_after(&store, after).await {
            Ok((head, requests)) => {
                after = head;
                for request in requests {
                    gateway.hand_over(request);
                }
            }
            Err(error) => tracing::warn!(%error, "command dispatcher could not read the log"),
        }
        let held = store.held_back_after(after).await.unwrap_or(false);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wakeups.changed() => {}
            _ = tokio::time::sleep(if held { Duration::from_millis(10) } else { Duration::from_millis(500) }) => {}
        }
    }
}
