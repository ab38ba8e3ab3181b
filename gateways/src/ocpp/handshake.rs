//! The WebSocket upgrade of a charger: its id, the subprotocol, HTTP Basic
//! authentication, and the refusals (with the failed-handshake limits).

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{ws::WebSocketUpgrade, ConnectInfo, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use base64::Engine;
use domain::{terminal::OcppVersion, TerminalId};

use super::{accept::Slot, connection, passwords::Checked, Gateway};

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

pub(super) async fn upgrade(
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
