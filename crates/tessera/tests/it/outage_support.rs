//! Faults for the outage tests: a throwaway PostgreSQL cluster of the test's own
//! (never the shared server) that can be stopped and started, and a TCP proxy in
//! front of a PostgreSQL server that can cut a connection right after forwarding a
//! `COMMIT` and refuse connections for a while.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::support::temp_dir;

/// The newest PostgreSQL server binaries on the machine, if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// A PostgreSQL cluster in a temporary directory on its own port, run as the
/// `postgres` user when the tests run as root (initdb and pg_ctl refuse root).
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Creates and starts a cluster; `None` (with a message) when the binaries are absent.
    pub async fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            eprintln!("no PostgreSQL server binaries under /usr/lib/postgresql: skipping the outage test");
            return None;
        };
        let dir = temp_dir("pgcluster");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let mut cluster = Self { bin, dir, port, as_postgres };
        let data = cluster.data();
        let data_arg = data.display().to_string();
        cluster.run("initdb", &["-D", &data_arg, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        // The port was free when probed, but another test may take it before the server
        // binds it: then start again on another one (the log says why it did not start).
        for attempt in 1..=3 {
            match cluster.try_start_server() {
                Ok(()) => return Some(cluster),
                Err(error) if attempt < 3 => {
                    eprintln!("the throwaway PostgreSQL did not start (attempt {attempt}): {error}");
                    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    cluster.port = probe.local_addr().unwrap().port();
                }
                Err(error) => panic!("the throwaway PostgreSQL did not start: {error}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts the server; the error carries pg_ctl's output and the server's log.
    fn try_start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let (data, log) = (self.data().display().to_string(), self.dir.join("log"));
        let log_arg = log.display().to_string();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", &data, "-l", &log_arg, "-o", &options, "-w", "-t", "30", "start"];
        let output = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        }
        .map_err(|error| error.to_string())?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{}{}\nlog:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        ))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The URL of the cluster's `postgres` database (no TLS: the proxy reads the stream).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// Starts the server (again, on its port) and waits until it accepts connections.
    pub fn start_server(&self) {
        if let Err(error) = self.try_start_server() {
            panic!("the throwaway PostgreSQL did not start again: {error}");
        }
    }

    /// Stops the server (`-m fast`: sessions are terminated, as in a restart).
    pub fn stop_server(&self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the proxy does to the next `COMMIT`, and whether it lets connections in.
#[derive(Default)]
struct Faults {
    /// Forward the next commit (see [`ClientMessages`]), then cut its connection unanswered.
    cut_after_commit: AtomicBool,
    /// Close every new connection at once.
    refusing: AtomicBool,
    /// Accept new connections and never answer them (a network partition, a firewall
    /// that drops packets): only timeouts end the wait.
    swallowing: AtomicBool,
    /// With the cut, also end every other connection and start refusing new ones:
    /// the store becomes unreachable just as the commit's answer is lost.
    blackout_with_cut: AtomicBool,
    /// Bumped to end every open connection.
    generation: tokio::sync::watch::Sender<u64>,
}

/// A TCP proxy in front of a PostgreSQL server, for commits whose answer is lost.
pub struct PgProxy {
    pub port: u16,
    faults: Arc<Faults>,
    /// Connections cut by the last armed `COMMIT`, signalled when it happened.
    cut: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

/// Statements that commit on their own (autocommit), known by a piece of their text:
/// the PostgreSQL store redeems good codes and rotates good refresh tokens in one
/// batched statement each, and rotates a token the batch skipped in one statement.
const SELF_COMMITTING: [&str; 3] = ["c.document @> b.fields", "successors AS (", "WITH used AS ("];

/// The client's side of the PostgreSQL protocol, read message by message, to find the
/// one that commits: a simple-protocol `COMMIT`, or the `Execute` of a prepared
/// statement whose text is [`SELF_COMMITTING`]. (sqlx prepares a statement in its own
/// round trip, `Parse`, and runs it later by name, `Bind` then `Execute`.)
#[derive(Default)]
struct ClientMessages {
    unread: Vec<u8>,
    /// Past the startup message, which has no type byte.
    started: bool,
    /// Prepared statement name -> whether it commits on its own.
    statements: std::collections::HashMap<Vec<u8>, bool>,
    /// Whether the statement bound last commits on its own.
    bound_commits: bool,
}

impl ClientMessages {
    /// Takes the next bytes from the client; whether a message among them commits.
    fn commits_in(&mut self, chunk: &[u8]) -> bool {
        self.unread.extend_from_slice(chunk);
        let mut commits = false;
        loop {
            if !self.started {
                let Some(length) = self.length_at(0) else { break };
                if self.unread.len() < length {
                    break;
                }
                // SSLRequest and GSSENCRequest come before the real startup message.
                let code =
                    u32::from_be_bytes([self.unread[4], self.unread[5], self.unread[6], self.unread[7]]);
                self.started = !matches!(code, 80_877_103 | 80_877_104);
                self.unread.drain(..length);
                continue;
            }
            let Some(length) = self.length_at(1) else { break };
            if self.unread.len() < 1 + length {
                break;
            }
            let kind = self.unread[0];
            let body: Vec<u8> = self.unread[5..1 + length].to_vec();
            self.unread.drain(..1 + length);
            let mut fields = body.split(|byte| *byte == 0);
            match kind {
                b'Q' => commits |= body == b"COMMIT\0",
                b'P' => {
                    let name = fields.next().unwrap_or_default().to_vec();
                    let text = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
                    self.statements.insert(name, SELF_COMMITTING.iter().any(|piece| text.contains(piece)));
                }
                b'B' => {
                    let _portal = fields.next();
                    let statement = fields.next().unwrap_or_default();
                    self.bound_commits = self.statements.get(statement).copied().unwrap_or(false);
                }
                b'E' => commits |= self.bound_commits,
                _ => {}
            }
        }
        commits
    }

    /// The big-endian length at `at + 0..4`, once those bytes are here.
    fn length_at(&self, at: usize) -> Option<usize> {
        let bytes = self.unread.get(at..at + 4)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    }
}

impl PgProxy {
    /// Listens on a loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults::default());
        let cut = Arc::new(Mutex::new(None));
        let (task_faults, task_cut) = (faults.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if task_faults.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if task_faults.swallowing.load(Ordering::SeqCst) {
                    tokio::spawn(async move {
                        let _held = client;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                tokio::spawn(pipe(client, server, task_faults.clone(), task_cut.clone()));
            }
        });
        Self { port, faults, cut }
    }

    /// Arms the cut: the next `COMMIT` reaches the server, its answer never the client.
    /// The receiver fires once it happened.
    pub async fn cut_after_next_commit(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (tell, told) = tokio::sync::oneshot::channel();
        *self.cut.lock().await = Some(tell);
        self.faults.cut_after_commit.store(true, Ordering::SeqCst);
        told
    }

    /// Like [`Self::cut_after_next_commit`], and at that moment every other connection
    /// ends too and new ones are refused, until [`Self::refuse`]`(false)`.
    pub async fn blackout_after_next_commit(&self) -> tokio::sync::oneshot::Receiver<()> {
        self.faults.blackout_with_cut.store(true, Ordering::SeqCst);
        self.cut_after_next_commit().await
    }

    /// Ends every open connection and, while set, swallows new ones unanswered.
    pub fn swallow(&self, swallowing: bool) {
        self.faults.swallowing.store(swallowing, Ordering::SeqCst);
        if swallowing {
            self.faults.generation.send_modify(|generation| *generation += 1);
        }
    }

    /// Closes new connections at once (as a restarting server does) while set.
    pub fn refuse(&self, refusing: bool) {
        self.faults.refusing.store(refusing, Ordering::SeqCst);
    }
}

/// Rewrites a PostgreSQL URL to go through the proxy on `port`, without TLS.
pub fn through_proxy(url: &str, port: u16) -> String {
    let parsed = url::Url::parse(url).unwrap();
    let mut proxied = parsed.clone();
    proxied.set_port(Some(port)).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    let mut text = proxied.to_string();
    text.push(if parsed.query().is_some() { '&' } else { '?' });
    text.push_str("sslmode=disable");
    text
}

/// The `host:port` a PostgreSQL URL names.
pub fn upstream_of(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(5432))
}

async fn pipe(
    mut client: TcpStream,
    mut server: TcpStream,
    faults: Arc<Faults>,
    cut: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
) {
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    // Set before the armed `COMMIT` goes out: from then on nothing reaches the client.
    let holding = AtomicBool::new(false);
    let upstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut messages = ClientMessages::default();
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            let saw_commit = messages.commits_in(chunk);
            let armed_commit = saw_commit && faults.cut_after_commit.swap(false, Ordering::SeqCst);
            if armed_commit {
                holding.store(true, Ordering::SeqCst);
                if faults.blackout_with_cut.swap(false, Ordering::SeqCst) {
                    faults.refusing.store(true, Ordering::SeqCst);
                    faults.generation.send_modify(|generation| *generation += 1);
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
            if armed_commit {
                // Let the server make it durable, then drop both sides unanswered.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if let Some(tell) = cut.lock().await.take() {
                    let _ = tell.send(());
                }
                return;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if holding.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let mut generation = faults.generation.subscribe();
    generation.mark_unchanged();
    let killed = async {
        let _ = generation.changed().await;
        // The connection that carries the armed commit still lets it through.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while holding.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = killed => {}
    }
}

/// Waits until `path` on `app` answers `status`, polling every 50 ms, up to `limit`.
pub async fn wait_for_status(http: &reqwest::Client, url: &str, status: u16, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let answered = tokio::time::timeout(Duration::from_secs(2), http.get(url).send()).await;
        if let Ok(Ok(response)) = answered
            && response.status().as_u16() == status
        {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{url} did not answer {status} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
