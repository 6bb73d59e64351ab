//! Benchmark support, never run beside a production store:
//! - `tessera-bench seed codes|refresh-tokens`: writes pre-issued authorization codes or
//!   refresh tokens into a store, as `/authorize` and the token endpoint would, and
//!   prints their values one per line, for `bench/run.sh` to redeem under load;
//! - `tessera-bench load`: a client-credentials load generator that can add a fresh
//!   DPoP proof (RFC 9449) to every request, which wrk cannot (`bench/dpop.sh`);
//! - `tessera-bench echo`: an API that answers with what it received, the upstream
//!   of `bench/bff.sh`.

mod echo;
mod load;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tessera_core::clock::{Clock as _, SystemClock};
use tessera_core::random::Rng;
use tessera_core::secret::{SecretHash, b64url, sha256};
use tessera_core::store::{CodeStore as _, PendingGrant, RefreshRecord, RefreshStore as _};
use tessera_store_sql::SqlStore;

/// The PKCE verifier of every seeded code (its S256 challenge is stored with them).
pub const VERIFIER: &str = "bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Seed writes awaited together.
const SEED_IN_FLIGHT: usize = 256;

#[derive(Parser)]
#[command(about = "Token-endpoint benchmark support")]
enum Command {
    /// Seed pre-issued codes or refresh tokens.
    Seed(Args),
    /// Drive client_credentials, optionally with DPoP proofs.
    Load(load::LoadArgs),
    /// Serve an echo API.
    Echo(echo::EchoArgs),
}

#[derive(clap::Args)]
struct Args {
    /// What to seed.
    #[arg(value_enum)]
    kind: Kind,
    /// The store URL (the server's `storage.url`).
    #[arg(long)]
    store: String,
    /// How many.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// The client they are issued to.
    #[arg(long, default_value = "web-app")]
    client_id: String,
    /// The redirect URI the codes were requested with.
    #[arg(long, default_value = "https://webapp.example.com/signin-oidc")]
    redirect_uri: String,
    /// Space-separated scopes.
    #[arg(long, default_value = "openid profile api1.read")]
    scope: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Codes,
    RefreshTokens,
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Command::parse() {
        Command::Seed(args) => seed(&args).await,
        Command::Load(args) => load::run(&args).await,
        Command::Echo(args) => echo::run(&args).await.map_err(Into::into),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn seed(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let store = SqlStore::connect(&args.store).await?;
    let rng = Rng::default();
    let now = SystemClock.now();
    let scopes: Vec<String> = args.scope.split(' ').map(str::to_owned).collect();
    let challenge = b64url(sha256(VERIFIER.as_bytes()));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Many writes in flight, so that the SQLite writer commits them in batches.
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..args.count {
        let value = rng.token();
        let hash = SecretHash::of(&value);
        let grant_id = rng.identifier();
        match args.kind {
            Kind::Codes => {
                let grant = PendingGrant {
                    grant_id: grant_id.into(),
                    client_id: args.client_id.as_str().into(),
                    subject: "a1b2c3".into(),
                    redirect_uri: Some(args.redirect_uri.clone()),
                    code_challenge: challenge.clone(),
                    scopes: scopes.clone(),
                    resources: Vec::new(),
                    nonce: Some("bench".into()),
                    auth_time: now,
                    sid: "bench-session".into(),
                    dpop_jkt: None,
                    amr: Vec::new(),
                    acr: None,
                };
                // Ten minutes: the benchmark redeems them long before.
                let store = store.clone();
                pending.spawn(async move { store.put_code(&hash, &grant, now + 600).await });
            }
            Kind::RefreshTokens => {
                let record = RefreshRecord {
                    grant_id: grant_id.into(),
                    client_id: args.client_id.as_str().into(),
                    subject: "a1b2c3".into(),
                    scopes: scopes.clone(),
                    resources: Vec::new(),
                    auth_time: now,
                    sid: "bench-session".into(),
                    issued_at: now,
                    expires_at: now + 86_400,
                    idle_expires_at: None,
                    dpop_jkt: None,
                    x5t_s256: None,
                    amr: Vec::new(),
                    acr: None,
                };
                let store = store.clone();
                pending.spawn(async move { store.put_refresh_token(&hash, &record).await });
            }
        }
        writeln!(out, "{value}")?;
        if pending.len() >= SEED_IN_FLIGHT {
            while let Some(done) = pending.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    out.flush()?;
    store.close().await;
    Ok(())
}
