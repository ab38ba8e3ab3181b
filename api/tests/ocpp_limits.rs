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

#[sqlx::test(migrations = "../migrations")]
async fn wrong_passwords_beyond_the_limit_get_429_for_that_charger_id(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 3;
        c.ocpp.limits.failures_per_address = 0;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-1")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-2")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-3")).await, 401);
    let (code, retry_after) = connect(s.ocpp, "EVSE-A", Some("wrong-4")).await.err().unwrap();
    assert_eq!(code, 429);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 429, "not even checked while the id is blocked");
    // Another charger from the same address is not affected.
    assert_eq!(status(s.ocpp, "EVSE-B", Some("wrong")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 101);
    let connections =
        "SELECT count(*) FROM events WHERE event_type = 'charger.connected' AND stream_id = 'charger-EVSE-B'";
    assert_eq!(settled(&s, connections, 1).await, 1);
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'charger.connected'").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn someone_hammering_a_chargers_id_cannot_keep_the_real_charger_out(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 3;
        c.ocpp.limits.failures_per_address = 0;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    // The real charger connects (its verification is remembered), then drops.
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 101);
    // Someone without its password: missing headers do not count against the id …
    for _ in 0..5 {
        assert_eq!(status(s.ocpp, "EVSE-B", None).await, 401);
    }
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 101, "missing headers never lock an id out");
    // … wrong passwords do, and the attacker is refused with 429 …
    for n in 1..=3 {
        assert_eq!(status(s.ocpp, "EVSE-A", Some(&format!("wrong-{n}"))).await, 401);
    }
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-4")).await, 429);
    assert_eq!(status(s.ocpp, "EVSE-A", None).await, 429);
    // … while the real charger, recently verified, still gets in.
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 101);
    let connections =
        "SELECT count(*) FROM events WHERE event_type = 'charger.connected' AND stream_id = 'charger-EVSE-A'";
    assert_eq!(settled(&s, connections, 2).await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_handshakes_beyond_the_limit_get_429_for_that_source_address(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 0;
        c.ocpp.limits.failures_per_address = 3;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-NOBODY", Some("x")).await, 404, "scanning for ids counts too");
    assert_eq!(status(s.ocpp, "EVSE-A", None).await, 401);
    // 127.0.0.1 is now blocked, whatever the charger and the password.
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 429);
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 429);
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'charger.connected'").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn stalled_handshakes_are_closed_by_the_server(pool: PgPool) {
    let s = setup(pool, |c| c.ocpp.limits.handshake_timeout = Duration::from_millis(700)).await;
    register(&s, "EVSE-1").await;
    let mut live = connect(s.ocpp, "EVSE-1", Some(PASSWORD)).await.unwrap();

    let silent = TcpStream::connect(s.ocpp).await.unwrap();
    let mut partial = TcpStream::connect(s.ocpp).await.unwrap();
    partial.write_all(b"GET /ocpp/EVSE-1 HT").await.unwrap();
    let (trickle_read, mut trickle_write) = TcpStream::connect(s.ocpp).await.unwrap().into_split();
    let trickler = tokio::spawn(async move {
        trickle_write.write_all(b"GET /ocpp/EVSE-1 HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
        for n in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickle_write.write_all(format!("X-Trickle-{n}: y\r\n").as_bytes()).await.is_err() {
                return true;
            }
        }
        false
    });
    assert!(closed_by_server(silent).await, "a socket that sends nothing");
    assert!(closed_by_server(partial).await, "a partial request line");
    assert!(closed_by_server(trickle_read).await, "trickled headers");
    trickler.abort();
    // The deadline is the handshake's only: the charger connected before it is served.
    assert_eq!(heartbeat(&mut live, "hb-1").await[0], 3);
}

/// The fixture certificate is self-signed (a CA used as the server's own
/// certificate, which webpki refuses; Python's ssl accepts it): the test client
/// checks that the server presents exactly that certificate.
mod pinned {
    use tokio_rustls::rustls::{
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms},
        pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
        DigitallySignedStruct, Error, SignatureScheme,
    };

    #[derive(Debug)]
    pub struct Pinned {
        pub cert: CertificateDer<'static>,
        pub algorithms: WebPkiSupportedAlgorithms,
    }

    impl Pinned {
        pub fn fixture() -> Self {
            let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ocpp-tls-cert.pem");
            let cert = CertificateDer::pem_file_iter(pem).unwrap().next().unwrap().unwrap();
            let algorithms = tokio_rustls::rustls::crypto::ring::default_provider().signature_verification_algorithms;
            Self { cert, algorithms }
        }
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            if end_entity.as_ref() == self.cert.as_ref() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(Error::General("not the fixture certificate".into()))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned::Pinned::fixture()))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls(addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls_connector().connect(name, tcp).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn stalled_tls_handshakes_are_closed_by_the_server(pool: PgPool) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let s = setup(pool, |c| {
        c.ocpp.tls =
            Some((format!("{fixtures}/ocpp-tls-cert.pem").into(), format!("{fixtures}/ocpp-tls-key.pem").into()));
        c.ocpp.limits.handshake_timeout = Duration::from_millis(700);
    })
    .await;
    register(&s, "EVSE-TLS").await;
    let url = format!("wss://{}/ocpp", s.ocpp);
    let (mut live, _) =
        tokio_tungstenite::client_async(request(&url, "EVSE-TLS", Some(PASSWORD)), tls(s.ocpp).await).await.unwrap();

    let silent = TcpStream::connect(s.ocpp).await.unwrap();
    let mut hello = TcpStream::connect(s.ocpp).await.unwrap();
    // A TLS record header announcing a ClientHello that never comes.
    hello.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00]).await.unwrap();
    let mut upgrade = tls(s.ocpp).await;
    upgrade.write_all(b"GET /ocpp/EVSE-TLS HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n").await.unwrap();
    upgrade.flush().await.unwrap();
    assert!(closed_by_server(silent).await, "TCP without a TLS handshake");
    assert!(closed_by_server(hello).await, "an incomplete TLS handshake");
    assert!(closed_by_server(upgrade).await, "TLS done, the upgrade request incomplete");
    assert_eq!(heartbeat(&mut live, "hb-1").await[0], 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn over_the_connection_cap_a_new_socket_is_refused_until_one_closes(pool: PgPool) {
    let s = setup(pool, |c| c.ocpp.limits.max_connections = 3).await;
    let ids = ["CAP-1", "CAP-2", "CAP-3", "CAP-4"];
    for id in ids {
        register(&s, id).await;
    }
    let mut live = Vec::new();
    for id in &ids[..3] {
        live.push(connect(s.ocpp, id, Some(PASSWORD)).await.unwrap());
    }
    assert_eq!(status(s.ocpp, "CAP-4", Some(PASSWORD)).await, 0, "the fourth socket is closed at once");
    for (n, ws) in live.iter_mut().enumerate() {
        assert_eq!(heartbeat(ws, &format!("hb-{n}")).await[0], 3, "existing connections untouched");
    }
    let mut first = live.remove(0);
    first.close(None).await.unwrap();
    while first.next().await.is_some() {}
    let mut accepted = None;
    for _ in 0..200 {
        if let Ok(ws) = connect(s.ocpp, "CAP-4", Some(PASSWORD)).await {
            accepted = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut fourth = accepted.expect("a place is free again once a socket closed");
    assert_eq!(heartbeat(&mut fourth, "hb-4").await[0], 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn over_the_pending_handshake_cap_a_new_socket_is_refused(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.max_pending_handshakes = 2;
        c.ocpp.limits.handshake_timeout = Duration::from_secs(120);
    })
    .await;
    register(&s, "PEND-1").await;
    register(&s, "PEND-2").await;
    let mut live = connect(s.ocpp, "PEND-1", Some(PASSWORD)).await.unwrap();
    let stalled = [TcpStream::connect(s.ocpp).await.unwrap(), TcpStream::connect(s.ocpp).await.unwrap()];
    // Both stalled sockets are pending once the server answers nothing to a probe's refusal.
    let mut refused = false;
    for _ in 0..200 {
        if status(s.ocpp, "PEND-2", Some(PASSWORD)).await == 0 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "a third handshake is refused while two are pending");
    assert_eq!(heartbeat(&mut live, "hb-1").await[0], 3, "connected chargers untouched");
    drop(stalled);
    let mut connected = false;
    for _ in 0..200 {
        if status(s.ocpp, "PEND-2", Some(PASSWORD)).await == 101 {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connected, "accepted again once the stalled sockets are gone");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wrong_password_never_replaces_the_live_connection(pool: PgPool) {
    let s = setup(pool, |c| c.ocpp.limits.failures_per_id = 2).await;
    register(&s, "EVSE-LIVE").await;
    let mut live = connect(s.ocpp, "EVSE-LIVE", Some(PASSWORD)).await.unwrap();
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("an-impostor")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", None).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("another-impostor")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("an-impostor")).await, 429);
    let answer = heartbeat(&mut live, "hb-live").await;
    assert_eq!((answer[0].as_i64(), answer[1].as_str()), (Some(3), Some("hb-live")), "{answer}");
    assert!(answer[2]["currentTime"].is_string());
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = 'charger-EVSE-LIVE' AND event_type LIKE 'charger.%connected'",
    )
    .fetch_all(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["charger.connected"], "never disconnected, never replaced");
}

/// Events on a charger's frame stream: (refused frames recorded one by one, summaries, summarized count, all).
async fn frame_log(s: &Setup, id: &str) -> (i64, i64, i64, i64) {
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE event_type = 'ocpp.frame_received' AND payload->'rejection' <> 'null'::jsonb), \
                count(*) FILTER (WHERE event_type = 'ocpp.frame_rejections_summarized'), \
                coalesce(sum((payload->>'count')::bigint) FILTER (WHERE event_type = 'ocpp.frame_rejections_summarized'), 0)::bigint, \
                count(*) \
         FROM events WHERE stream_id = $1",
    )
    .bind(format!("ocpp-{id}"))
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    row
}

#[sqlx::test(migrations = "../migrations")]
async fn a_frame_flood_gets_callerrors_is_closed_and_stays_small_in_the_log(pool: PgPool) {
    let s = setup(pool, |c| {
        let l = &mut c.ocpp.limits;
        (l.frames_per_sec, l.frame_burst, l.flood_close_after, l.rejections_logged) = (1, 5, 50, 5);
        l.rejection_interval = Duration::from_secs(3600);
    })
    .await;
    register(&s, "EVSE-FLOOD").await;
    let mut ws = connect(s.ocpp, "EVSE-FLOOD", Some(PASSWORD)).await.unwrap();
    // One at a time: the burst is answered, then the rate limit answers CALLERROR.
    let mut limited = None;
    for n in 0..20 {
        let answer = heartbeat(&mut ws, &format!("hb-{n}")).await;
        if answer[0] == 4 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a CALLERROR once the burst is spent");
    assert_eq!(limited[2], "GenericError", "{limited}");
    assert!(limited[3].as_str().unwrap().contains("rate limit"), "{limited}");
    // Then 1,000 junk frames without waiting: refused, and the connection closed.
    for n in 0..1000 {
        if ws.send(Message::Text(format!("junk {n} not a frame").into())).await.is_err() {
            break;
        }
    }
    let mut answers = 0;
    while let Some(frame) = next_text(&mut ws).await {
        assert_eq!(frame[0], 4, "{frame}");
        answers += 1;
    }
    assert!(answers < 1000, "closed before the flood was answered");
    let disconnected =
        "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-FLOOD' AND event_type = 'charger.disconnected'";
    assert_eq!(settled(&s, disconnected, 1).await, 1);
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE stream_id = 'charger-EVSE-FLOOD' AND event_type = 'charger.disconnected'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(reason.starts_with("frame flood"), "{reason}");
    let (one_by_one, summaries, summarized, all) = frame_log(&s, "EVSE-FLOOD").await;
    assert_eq!(one_by_one, 5, "the first five refusals of the interval are recorded one by one");
    assert_eq!(summaries, 1, "the rest in one summary, recorded when the connection closed");
    assert!(summarized >= 45, "the summary counts the refused frames: {summarized}");
    assert!(all <= 40, "a few dozen events at most, not thousands: {all}");
    let over_rate: i64 = sqlx::query_scalar(
        "SELECT (payload->>'overRate')::bigint FROM events WHERE event_type = 'ocpp.frame_rejections_summarized'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(over_rate >= 45, "{over_rate}");
}

#[sqlx::test(migrations = "../migrations")]
async fn rejected_frames_beyond_a_rate_are_summarized_without_a_rate_limit(pool: PgPool) {
    let s = setup(pool, |c| {
        (c.ocpp.limits.frames_per_sec, c.ocpp.limits.rejections_logged) = (0, 5);
    })
    .await;
    register(&s, "EVSE-JUNK").await;
    let mut ws = connect(s.ocpp, "EVSE-JUNK", Some(PASSWORD)).await.unwrap();
    for n in 0..1000 {
        ws.send(Message::Text(format!("[2,\"j{n}\",\"Heartbeat\",{{\"junk\":1}}]").into())).await.unwrap();
    }
    for _ in 0..1000 {
        let answer = next_text(&mut ws).await.expect("every junk frame is answered");
        assert_eq!((answer[0].as_i64(), answer[2].as_str()), (Some(4), Some("FormationViolation")), "{answer}");
    }
    assert_eq!(heartbeat(&mut ws, "after").await[0], 3, "the connection survives without a rate limit");
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let mut log = (0, 0, 0, 0);
    for _ in 0..500 {
        log = frame_log(&s, "EVSE-JUNK").await;
        if log.1 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (one_by_one, summaries, summarized, all) = log;
    assert_eq!((one_by_one, summaries, summarized), (5, 1, 995), "{log:?}");
    assert_eq!(all, 5 * 2 + 1 + 2, "five refusals with their CALLERRORs, the summary, the heartbeat and its answer");
    let codes: Value = sqlx::query_scalar(
        "SELECT payload->'byCode' FROM events WHERE event_type = 'ocpp.frame_rejections_summarized'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(codes, json!({"FormationViolation": 995}));
}

#[sqlx::test(migrations = "../migrations")]
async fn reconnecting_does_not_reset_what_the_log_records_of_rejected_frames(pool: PgPool) {
    let s = setup(pool, |c| {
        (c.ocpp.limits.frames_per_sec, c.ocpp.limits.rejections_logged) = (0, 5);
        c.ocpp.limits.rejection_interval = Duration::from_secs(3600);
    })
    .await;
    register(&s, "EVSE-LOOP").await;
    // Connect, 20 junk frames, disconnect: ten times in one interval.
    for round in 0..10i64 {
        let mut ws = connect(s.ocpp, "EVSE-LOOP", Some(PASSWORD)).await.unwrap();
        for n in 0..20 {
            ws.send(Message::Text(format!("[2,\"r{round}-{n}\",\"Heartbeat\",{{\"junk\":1}}]").into())).await.unwrap();
        }
        for _ in 0..20 {
            assert_eq!(next_text(&mut ws).await.expect("answered")[0], 4);
        }
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
        let disconnected =
            "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-LOOP' AND event_type = 'charger.disconnected'";
        assert_eq!(settled(&s, disconnected, round + 1).await, round + 1);
    }
    let (one_by_one, summaries, summarized, _) = frame_log(&s, "EVSE-LOOP").await;
    assert_eq!(one_by_one, 5, "five refusals recorded one by one in the interval, across all ten connections");
    assert_eq!(summarized, 195, "the other 195 are counted in summaries");
    assert!(summaries <= 10, "at most one summary per connection: {summaries}");
}

/// The reconnect storm of 1,000 chargers with passwords against the real binary.
#[path = "ocpp_limits/ocpp_storm.rs"]
mod ocpp_storm;
