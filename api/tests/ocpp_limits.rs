//! Abuse limits of the OCPP port (issue 10 rule 7, issue 21 items 1 and 2,
//! ADR 0017), with raw clients on the loopback: failed handshakes get 429 per
//! charger id and per source address, stalled handshakes are closed on ws://
//! and wss://, socket caps, a wrong password never replaces a live charger, a
//! frame flood is refused, closed and summarized in the log, and a storm of
//! 1,000 password-protected chargers stays under a memory bound
//! (`ocpp_storm` below, against the real binary).
#![allow(clippy::unwrap_used)]

mod support;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use base64::Engine;
use chargeledger_api::{auth::Role, config::Config};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::PASSWORD, *};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Error as WsError, Message},
    MaybeTlsStream, WebSocketStream,
};
use uuid::Uuid;

type Ws<S = MaybeTlsStream<TcpStream>> = WebSocketStream<S>;

struct Setup {
    app: TestApp,
    token: String,
    ocpp: SocketAddr,
}

async fn setup(pool: PgPool, configure: impl FnOnce(&mut Config)) -> Setup {
    let mut config = test_config(&pool);
    configure(&mut config);
    let app = TestApp::start_with(config, pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let ocpp = app.running.ocpp_addr.unwrap();
    Setup { app, token, ocpp }
}

async fn register(s: &Setup, id: &str) {
    let (status, body) = json_of(s.app.post("/v1/terminals", &s.token, &terminal(id, 7)).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

async fn scalar(s: &Setup, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&s.app.running.state.pool).await.unwrap()
}

/// `sql`'s count once it is `expected` (the gateway records connections and
/// disconnections just after the socket opens or closes), or its last value.
async fn settled(s: &Setup, sql: &str, expected: i64) -> i64 {
    let mut value = scalar(s, sql).await;
    for _ in 0..250 {
        if value == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        value = scalar(s, sql).await;
    }
    value
}

fn request(url: &str, id: &str, password: Option<&str>) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("{url}/{id}").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
    if let Some(p) = password {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{p}"));
        request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Basic {token}")).unwrap());
    }
    request
}

/// A WebSocket charger, or the HTTP status of the refusal (0: the socket was closed, with its Retry-After).
async fn connect(addr: SocketAddr, id: &str, password: Option<&str>) -> Result<Ws, (u16, Option<String>)> {
    match tokio_tungstenite::connect_async(request(&format!("ws://{addr}/ocpp"), id, password)).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err((
            response.status().as_u16(),
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned),
        )),
        Err(_) => Err((0, None)),
    }
}

async fn status(addr: SocketAddr, id: &str, password: Option<&str>) -> u16 {
    match connect(addr, id, password).await {
        Ok(mut ws) => {
            let _ = ws.close(None).await;
            101
        }
        Err((status, _)) => status,
    }
}

/// The next text frame as JSON, or `None` when the connection ended.
async fn next_text<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(ws: &mut Ws<S>) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("no frame within 30 s") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn heartbeat<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(ws: &mut Ws<S>, id: &str) -> Value {
    ws.send(Message::Text(format!(r#"[2,"{id}","Heartbeat",{{}}]"#).into())).await.unwrap();
    next_text(ws).await.expect("the connection ended")
}

/// Reads until the server closes the socket (EOF or reset); false if it is
/// still open after 30 s (the limits under test are far shorter).
async fn closed_by_server(mut stream: impl AsyncRead + Unpin) -> bool {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all).await.is_ok()
}

#[path = "ocpp_limits/frames.rs"]
mod frames;
#[path = "ocpp_limits/handshakes.rs"]
mod handshakes;
#[path = "ocpp_limits/sockets.rs"]
mod sockets;

/// The reconnect storm of 1,000 chargers with passwords against the real binary.
#[path = "ocpp_limits/ocpp_storm.rs"]
mod ocpp_storm;
