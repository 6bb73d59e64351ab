//! Slow and idle clients (issue 12): a header read timeout, an idle timeout and a
//! connection cap keep them from starving everyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::TestServer;

const SHORT_TIMEOUTS: [(&str, &str); 2] =
    [("TESSERA__SERVER__HEADER_READ_TIMEOUT", "1s"), ("TESSERA__SERVER__IDLE_TIMEOUT", "2s")];

/// Reads until the server closes the connection; `Err` when it stays open past `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<(), ()> {
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .map_err(|_| ())
}

fn address(app: &TestServer) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed_while_a_normal_request_beside_2000_of_them_succeeds() {
    tessera::server::raise_descriptor_limit();
    let app = TestServer::spawn_with_env("", &SHORT_TIMEOUTS).await;
    let address = address(&app);
    let mut idle = Vec::new();
    let mut half_sent = Vec::new();
    for n in 0..2000 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        if n % 2 == 0 {
            idle.push(stream);
        } else {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaa").await.unwrap();
            half_sent.push(stream);
        }
    }
    let started = Instant::now();
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "served after {:?}", started.elapsed());

    // Every one of them is closed once the timeouts pass (1 s here, plus slack).
    let limit = Duration::from_secs(4);
    let started = Instant::now();
    for stream in idle.iter_mut().chain(half_sent.iter_mut()) {
        let remaining = limit.saturating_sub(started.elapsed());
        closed_within(stream, remaining).await.expect("connection closed by the server");
    }
    assert!(started.elapsed() >= Duration::from_millis(500), "not closed before the timeout");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_closed_once_idle() {
    let app = TestServer::spawn_with_env("", &SHORT_TIMEOUTS).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 1024];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..n]));
    let started = Instant::now();
    closed_within(&mut stream, Duration::from_secs(4)).await.expect("idle connection closed");
    assert!(started.elapsed() >= Duration::from_millis(500), "closed after {:?}", started.elapsed());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_clients_wait_until_idle_ones_are_closed() {
    let mut env = SHORT_TIMEOUTS.to_vec();
    env.push(("TESSERA__SERVER__MAX_CONNECTIONS", "5"));
    let app = TestServer::spawn_with_env("", &env).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(address(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "the cap let a sixth connection in after {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    app.stop().await;
}
