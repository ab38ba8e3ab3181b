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
pub mod limits;
pub mod messages;
mod passwords;
pub mod schema;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    extract::{ws::WebSocketUpgrade, ConnectInfo, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router,
};
use base64::Engine;
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
    accept::Slot,
    limits::{FailedHandshakes, ParkedLimiters},
    passwords::{Checked, PasswordChecker},
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
    /// Owner.
    pub company_id: Uuid,
    /// Argon2 hash of its basic-auth password, if it has one.
    pub password_hash: Option<String>,
}

/// Where chargers are registered (the terminals read model, in the binary).
#[async_trait]
pub trait ChargerDirectory: Send + Sync + 'static {
    /// The charger, if registered.
    async fn find(&self, id: &TerminalId) -> Result<Option<ChargerRecord>, String>;
    /// Registers an unknown charger to `company` (auto-registration).
    async fn auto_register(
        &self,
        id: &TerminalId,
        company: Uuid,
        version: OcppVersion,
    ) -> Result<ChargerRecord, String>;
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

    /// Settings.
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

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = (status, message.to_owned()).into_response();
    let headers = response.headers_mut();
    // A refused socket does not stay open for another try: it would hold a
    // pending-handshake place until the deadline.
    headers.insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"chargeledger OCPP\""));
    }
    response
}

/// 429 with `Retry-After` (whole seconds, at least 1).
fn too_many(wait: Duration) -> Response {
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "too many failed handshakes: retry later");
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = header::HeaderValue::from_str(&secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The subprotocol to speak: the first the charger offers that we know.
fn negotiate(headers: &HeaderMap) -> Option<(OcppVersion, &'static str)> {
    let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').map(str::trim).find_map(|p| match p {
        "ocpp1.6" => Some((OcppVersion::V16, "ocpp1.6")),
        "ocpp2.0.1" => Some((OcppVersion::V201, "ocpp2.0.1")),
        _ => None,
    })
}

/// `Basic base64(id:password)`: the password, if the user is the charger's id.
fn basic_password(headers: &HeaderMap, id: &str) -> Option<String> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = raw.strip_prefix("Basic ").or_else(|| raw.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (user == id).then(|| password.to_owned())
}

async fn upgrade(
    State(gateway): State<Gateway>,
    Path(raw_id): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    slot: Option<Extension<Slot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let limits = &gateway.inner.config.limits;
    let failures = &gateway.inner.failures;
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    // Counts a refusal against the source address (and the id, for passwords).
    let failed = |password_of: Option<&str>| {
        if let Some(ip) = ip {
            failures.failed(limits, ip, password_of);
        }
    };
    let Ok(id) = TerminalId::parse(&raw_id) else {
        failed(None);
        return refuse(StatusCode::NOT_FOUND, "unknown charge point");
    };
    // Over a limit: only a charger whose password was verified recently still
    // gets in (an HMAC, no Argon2), so someone hammering a charger's id with
    // wrong passwords cannot keep the real charger out while its verification
    // is remembered (ADR 0017).
    let limited = ip.and_then(|ip| failures.blocked(limits, ip, id.as_str()));
    if let Some(wait) = limited.filter(|_| basic_password(&headers, id.as_str()).is_none()) {
        return too_many(wait);
    }
    let Some((version, protocol)) = negotiate(&headers) else {
        failed(None);
        return refuse(StatusCode::BAD_REQUEST, "offer the WebSocket subprotocol ocpp1.6 or ocpp2.0.1");
    };
    let directory = gateway.inner.directory.clone();
    let record = match directory.find(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => match gateway.inner.config.auto_register_company {
            Some(company) => match directory.auto_register(&id, company, version).await {
                Ok(record) => record,
                Err(error) => {
                    tracing::error!(%error, charger = %id, "auto-registration failed");
                    return refuse(StatusCode::SERVICE_UNAVAILABLE, "auto-registration failed");
                }
            },
            None => {
                failed(None);
                if let Some(wait) = limited {
                    return too_many(wait);
                }
                return refuse(StatusCode::NOT_FOUND, "unknown charge point: register it first");
            }
        },
        Err(error) => {
            tracing::error!(%error, "charger lookup failed");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "charger directory unavailable");
        }
    };
    if let Some(hash) = record.password_hash.clone() {
        let Some(password) = basic_password(&headers, id.as_str()) else {
            // Counted against the address only: anyone can omit a header, and
            // that must not lock the charger's own id out.
            failed(None);
            return match limited {
                Some(wait) => too_many(wait),
                None => {
                    refuse(StatusCode::UNAUTHORIZED, "HTTP Basic authentication with the charge point id is required")
                }
            };
        };
        if let Some(wait) = limited {
            if !gateway.inner.passwords.remembered(id.as_str(), &password, &hash) {
                return too_many(wait);
            }
        } else if gateway.inner.passwords.check(id.as_str(), password, hash).await == Checked::Wrong {
            failed(Some(id.as_str()));
            tracing::warn!(charger = %id, "basic auth refused");
            return refuse(StatusCode::UNAUTHORIZED, "wrong charge point password");
        }
    }
    if record.password_hash.is_none() {
        if let Some(wait) = limited {
            return too_many(wait);
        }
    }
    let max = gateway.inner.config.max_frame_bytes;
    // Only an authenticated upgrade reaches this point, so only it can replace
    // a live connection for the id (`Gateway::attach`, after the upgrade).
    // Small buffers: tens of thousands of mostly idle connections share this process.
    ws.protocols([protocol])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            // The socket's place under the connection cap, until it closes.
            let _slot = slot;
            connection::run(gateway, id, version, record.company_id, socket).await
        })
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

/// TLS for security profile 2: the certificate chain and key the gateway presents.
pub mod tls {
    use std::{path::Path, sync::Arc};

    use tokio_rustls::{
        rustls::{
            pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
            ServerConfig,
        },
        TlsAcceptor,
    };

    /// Builds an acceptor from PEM files (certificate chain, private key).
    pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key do not match: {e}"))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
