//! A client-credentials load generator: `connections` tasks sending requests back to
//! back for `duration`, each with a fresh DPoP proof when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tessera_core::clock::{Clock as _, SystemClock};
use tessera_core::random::Rng;
use tessera_core::secret::b64url;
use tessera_core::tokens::{SigningAlgorithm, SigningKey, generate_pkcs8};

/// Load settings.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The token endpoint.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "service-a")]
    client_id: String,
    #[arg(long, default_value = "service-a-secret")]
    client_secret: String,
    #[arg(long, default_value = "api1.read")]
    scope: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Send a fresh DPoP proof with every request.
    #[arg(long)]
    dpop: bool,
    /// With `--dpop`: sign this many proofs (each with its own `jti`) before the
    /// timed run, so that the run measures the server, as wrk does for plain
    /// requests; proofs are signed during the run once these are used up. Their
    /// `iat` is the signing time: the run must end within the server's proof
    /// window (five minutes).
    #[arg(long, default_value_t = 0)]
    presign: usize,
}

/// Signs DPoP proofs with a key pair parsed once (DEPENDENCIES.md trap 1: jsonwebtoken
/// would re-parse the private key for every proof).
struct Prover {
    /// base64url of `{"typ":"dpop+jwt","alg":"ES256","jwk":{…}}`.
    header: String,
    key: SigningKey,
    rng: Rng,
}

impl Prover {
    fn new(rng: &Rng) -> Result<Self, Box<dyn std::error::Error>> {
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, rng)?;
        let key = SigningKey::from_pkcs8("load", SigningAlgorithm::Es256, &pkcs8)?;
        let mut jwk = key.public_jwk();
        if let Some(object) = jwk.as_object_mut() {
            object.remove("kid");
            object.remove("use");
        }
        let header = b64url(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk }).to_string());
        Ok(Self { header, key, rng: rng.clone() })
    }

    fn proof(&self, url: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let claims =
            json!({ "jti": self.rng.identifier(), "htm": "POST", "htu": url, "iat": SystemClock.now() });
        let mut proof = format!("{}.{}", self.header, b64url(claims.to_string()));
        let signature = self.key.sign(proof.as_bytes(), &self.rng)?;
        proof.push('.');
        proof.push_str(&b64url(signature));
        Ok(proof)
    }

    /// Signs `count` proofs ahead of the timed run, on every core.
    fn presign(self: &Arc<Self>, url: &str, count: usize) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (prover, url) = (Arc::clone(self), url.to_owned());
                let share = count / workers + usize::from(worker < count % workers);
                std::thread::spawn(move || {
                    (0..share).map(|_| prover.proof(&url)).collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut proofs = Vec::with_capacity(count);
        for handle in handles {
            proofs
                .extend(handle.join().map_err(|_| "a signing thread panicked")?.map_err(|e| e.to_string())?);
        }
        Ok(proofs)
    }
}

/// Proofs signed before the run, handed out once each; signed on the spot when they
/// run out.
struct Proofs {
    prover: Arc<Prover>,
    ready: Vec<String>,
    next: AtomicUsize,
}

impl Proofs {
    fn take(&self, url: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        match self.ready.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            Some(proof) => Ok(proof.clone()),
            None => self.prover.proof(url),
        }
    }
}

/// Runs the load and prints one line like `bench/cc.lua`'s.
pub async fn run(args: &LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let rng = Rng::default();
    let proofs = if args.dpop {
        let prover = Arc::new(Prover::new(&rng)?);
        let ready = prover.presign(&args.url, args.presign)?;
        Some(Arc::new(Proofs { prover, ready, next: AtomicUsize::new(0) }))
    } else {
        None
    };
    let form = [("grant_type", "client_credentials".to_owned()), ("scope", args.scope.clone())];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (http, proofs, form) = (http.clone(), proofs.clone(), form.clone());
        let (url, id, secret) = (args.url.clone(), args.client_id.clone(), args.client_secret.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let mut request = http.post(&url).basic_auth(&id, Some(&secret)).form(&form);
                if let Some(proofs) = &proofs {
                    match proofs.take(&url) {
                        Ok(proof) => request = request.header("DPoP", proof),
                        Err(_) => errors += 1,
                    }
                }
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                errors += u64::from(!ok);
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (mut some, some_errors) = task.await?;
        latencies.append(&mut some);
        errors += some_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies.get(latencies.len().saturating_sub(1) * p / 100).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    #[expect(clippy::cast_precision_loss, reason = "a request count far below 2^52")]
    let rate = latencies.len() as f64 / elapsed;
    println!(
        "requests/s {rate:.1}  p50 {:.3} ms  p99 {:.3} ms  errors {errors}  (requests {})",
        percentile(50),
        percentile(99),
        latencies.len()
    );
    Ok(())
}
