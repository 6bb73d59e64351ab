//! The accept loop both listeners share: a cap on open connections, a header read
//! timeout and an idle timeout, so slow or idle clients cannot hold the server's
//! descriptors or memory (hyper alone sets neither, and `axum::serve` exposes neither).
//!
//! - **Cap**: a permit per open connection, shared by the plain and the TLS listener;
//!   at the cap the loop stops accepting (new clients wait in the kernel's backlog)
//!   and says so once in the log.
//! - **Header read timeout**: hyper's own (`http1::Builder::header_read_timeout`, which
//!   needs a timer): a request's head must arrive within it, however slowly it trickles.
//! - **Idle timeout**: a connection with no request in flight and no byte read or
//!   written for this long is closed; one that never sent a request gets the header
//!   read timeout instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

/// How long in-flight connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing idle connection gets to say goodbye (HTTP/2 GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Timeouts and the cap, as `[server]` configures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// The connection budget the listeners share.
#[derive(Clone)]
pub struct Connections {
    limits: ConnectionLimits,
    permits: Arc<Semaphore>,
    /// Set while at the cap, so the log says so once per episode, not per connection.
    saturated: Arc<std::sync::atomic::AtomicBool>,
}

impl Connections {
    /// A budget of `limits.max_connections` open connections.
    #[must_use]
    pub fn new(limits: ConnectionLimits) -> Self {
        let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            limits: ConnectionLimits { max_connections: max, ..limits },
            permits: Arc::new(Semaphore::new(max)),
            saturated: Arc::default(),
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Waits for a free slot, logging when the cap is what makes it wait.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            if self.saturated.swap(false, Ordering::Relaxed) {
                info!(max_connections = self.limits.max_connections, "below the connection cap again");
            }
            return Some(permit);
        }
        if !self.saturated.swap(true, Ordering::Relaxed) {
            warn!(
                max_connections = self.limits.max_connections,
                "connection cap reached: new connections wait in the backlog until one closes \
             (raise [server] max_connections, or look for idle clients)"
            );
        }
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Waits (up to the drain timeout) until every connection has closed.
    async fn drain(&self) {
        let all = u32::try_from(self.limits.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(DRAIN_TIMEOUT, self.permits.acquire_many(all)).await.is_err() {
            debug!("connections still open after the drain timeout");
        }
    }
}

/// Accepts connections on `listener` until `shutdown` resolves, turning each socket
/// into a served stream with `handshake` (identity for plain HTTP, TLS for the TLS
/// listener) and the request extensions it yields; then drains.
///
/// # Errors
/// When the listener's address cannot be read.
pub async fn serve<H, F, S>(
    listener: TcpListener,
    router: Router,
    connections: Connections,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    H: Fn(Tracked<TcpStream>, std::net::SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<(S, axum::http::Extensions)>> + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let address = listener.local_addr()?;
    loop {
        let permit = tokio::select! {
            permit = connections.slot() => match permit {
                Some(permit) => permit,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(%address, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (router, handshake, stopped, limits) =
            (router.clone(), handshake.clone(), stopped.clone(), connections.limits);
        tokio::spawn(async move {
            let activity = Arc::new(Activity::new());
            let Some((stream, extensions)) = handshake(Tracked::new(stream, activity.clone()), peer).await
            else {
                drop(permit);
                return;
            };
            serve_connection(stream, peer, extensions, router, limits, &activity, stopped).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    connections.drain().await;
    info!(%address, "listener stopped");
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    extensions: axum::http::Extensions,
    router: Router,
    limits: ConnectionLimits,
    activity: &Arc<Activity>,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().extend(extensions.clone());
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = Busy::start(in_flight.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    loop {
        let deadline = activity.idle_deadline(limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if activity.idle_deadline(limits) <= Instant::now() {
                    debug!(%peer, "closing an idle connection");
                    break;
                }
            }
            _ = stopped.wait_for(|stop| *stop) => break,
        }
    }
    // Idle (or shutting down): HTTP/1 closes at once, HTTP/2 sends GOAWAY and finishes
    // the streams in flight, within the grace (the drain timeout at shutdown).
    connection.as_mut().graceful_shutdown();
    let grace = if *stopped.borrow() { DRAIN_TIMEOUT } else { CLOSE_GRACE };
    let _ = tokio::time::timeout(grace, connection.as_mut()).await;
}

/// When a connection last moved a byte, how many requests it has in flight, and
/// whether it has had one at all.
pub struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    /// When this connection counts as idle: never while a request runs (far future);
    /// else the last activity plus the idle timeout, or the header read timeout for a
    /// connection that has sent no request yet.
    fn idle_deadline(&self, limits: ConnectionLimits) -> Instant {
        let last = self.started + Duration::from_millis(self.last.load(Ordering::Relaxed));
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        let limit = if self.requests.load(Ordering::Relaxed) == 0 {
            limits.header_read_timeout.min(limits.idle_timeout)
        } else {
            limits.idle_timeout
        };
        last + limit
    }
}

/// Counts a request in flight for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that notes every byte moved in its connection's [`Activity`].
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Tracked<T> {
    fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
