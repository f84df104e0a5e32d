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
use futures::FutureExt;
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
            // The request's future is boxed: hyper keeps a slot of the future's size for
            // as long as the connection lives (~300 bytes of an idle or streaming
            // connection); a box is freed when its response is made.
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                Box::pin(app.clone().oneshot(req.map(axum::body::Body::new)))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            // One `write` of a buffer hyper copies the head and body into, rather than a
            // `writev` of both (and of a chunk's size line and end): measured faster for
            // what plotq writes most, alternated build against build (a cached 13 KB PNG
            // 50.6k -> 54.4k requests/s; an SSE event to 10,000 clients p99 115 -> 103 ms).
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(self.config.header_read_timeout)
                .max_buf_size(64 * 1024)
                .writev(false);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let watched = graceful.watch(connection);
            // A combinator, not an `async move` block: a block would keep the moved-in
            // connection and the future it awaits as two fields, twice its size a
            // connection (~830 bytes, measured).
            tokio::spawn(watched.map(move |ended| {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            }));
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on a free port answering `ok` at `/`, until the token is cancelled.
    async fn serve_ok(
        config: ServerConfig,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let server = HttpServer::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let serving = tokio::spawn(server.run_until_stopped(app, shutdown.clone()));
        (addr, shutdown, serving)
    }

    #[tokio::test]
    async fn a_client_that_dribbles_its_headers_is_cut_off() {
        let (addr, shutdown, serving) = serve_ok(ServerConfig {
            header_read_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        })
        .await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // Never finish the headers: the server must close the connection by itself.
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection was held open");
        // A well-behaved client is still served.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), serving)
            .await
            .expect("the server drained and stopped")
            .unwrap();
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let (addr, shutdown, _serving) = serve_ok(ServerConfig {
            max_connections: 1,
            ..ServerConfig::default()
        })
        .await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        // The first connection stays open (keep-alive): the second is not served yet.
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let waiting =
            tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
        assert!(waiting.is_err(), "served beyond the connection cap");
        drop(first);
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), second.read_to_string(&mut answer))
            .await
            .expect("served once a slot freed up")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        shutdown.cancel();
    }
}
