//! Sockets: stalled handshakes closed on ws:// and wss://, the connection cap
//! and the pending handshake cap.

use super::*;

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
