//! The HTTP server loop of every role, split like zero-to-production's startup:
//! `HttpServer::bind` (binds, exposes the bound address, fails fast with the reason)
//! and `run_until_stopped` (serves until the shutdown token, then drains).
//!
//! Unlike `axum::serve`, it bounds what a client can hold: at most `max_connections`
//! open connections (further ones wait in the listen backlog), a header read timeout
//! (a client that opens a connection and dribbles headers is cut off), a cap on header
//! buffer size, and a drain deadline on shutdown. Each request carries the peer address
//! (`ConnectInfo`) for per-client limits of anonymous callers.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// On shutdown, how long open connections (and SSE streams) may take to close.
    pub drain: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// A bound, not yet serving, HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
    config: ServerConfig,
}

impl HttpServer {
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `app` until `shutdown`, then stops accepting and waits (up to the drain
    /// deadline) for open connections to finish.
    pub async fn run_until_stopped(self, app: Router, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let app = app.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(self.config.header_read_timeout)
                .max_buf_size(64 * 1024);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = watched.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(self.listener);
        if tokio::time::timeout(self.config.drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(drain = ?self.config.drain, "connections still open after the drain deadline; closing");
        }
    }
}
