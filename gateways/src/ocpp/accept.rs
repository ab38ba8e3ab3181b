//! The accept loop of the OCPP port, for `ws://` and `wss://` alike (ADR 0017):
//! a cap on open sockets and on sockets still handshaking (over either, a new
//! socket is closed at once and nothing else is touched), and one deadline from
//! TCP accept through TLS to the completed HTTP upgrade.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::limits::OcppLimits;

/// One of the `max_connections` places, held by the socket's handshake and
/// then by its charger connection, so it is free again only when the socket is.
#[derive(Clone, Debug)]
pub(crate) struct Slot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Accepts sockets until shutdown.
pub(crate) async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: &OcppLimits,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let pending = Arc::new(Semaphore::new(limits.max_pending_handshakes.max(1)));
    let timeout = limits.handshake_timeout;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection cap reached: socket closed");
            continue;
        };
        let Ok(handshaking) = pending.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "pending-handshake cap reached: socket closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, tls, stop) = (router.clone(), tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _handshaking = handshaking;
            let deadline = Instant::now() + timeout;
            let slot = Slot(Arc::new(slot));
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = handshake(router, tcp, peer, tls, slot, deadline) => {}
            }
        });
    }
}

/// TLS (if configured), then HTTP until the upgrade, all before `deadline`;
/// past it the socket is dropped, which closes it.
async fn handshake(
    router: Router,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slot: Slot,
    deadline: Instant,
) {
    match tls {
        None => http(router, tcp, peer, slot, deadline).await,
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => http(router, stream, peer, slot, deadline).await,
            Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake not completed in time: closed"),
        },
    }
}

async fn http<IO>(router: Router, io: IO, peer: SocketAddr, slot: Slot, deadline: Instant)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        use tower::ServiceExt;
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(slot.clone());
        router.clone().oneshot(request)
    });
    // The connection future ends when the socket is upgraded (the WebSocket
    // then lives in its own task) or closed: the deadline covers exactly the
    // handshake, including a refused request kept alive.
    let connection = hyper::server::conn::http1::Builder::new()
        .max_buf_size(16 * 1024)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    match tokio::time::timeout_at(deadline, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%peer, %error, "handshake ended with an error"),
        Err(_) => tracing::debug!(%peer, "HTTP upgrade not completed in time: closed"),
    }
}
