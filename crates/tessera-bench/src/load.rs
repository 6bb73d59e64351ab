//! A client-credentials load generator: `connections` tasks sending requests back to
//! back for `duration`, each with a fresh DPoP proof when asked.

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_core::clock::{Clock as _, SystemClock};
use tessera_core::random::Rng;
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
}

struct Prover {
    header: jsonwebtoken::Header,
    key: jsonwebtoken::EncodingKey,
    rng: Rng,
}

impl Prover {
    fn new(rng: &Rng) -> Result<Self, Box<dyn std::error::Error>> {
        let pkcs8 = generate_pkcs8(SigningAlgorithm::Es256, rng)?;
        let mut jwk = SigningKey::from_pkcs8("load", SigningAlgorithm::Es256, &pkcs8)?.public_jwk();
        if let Some(object) = jwk.as_object_mut() {
            object.remove("kid");
            object.remove("use");
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(jwk)?);
        Ok(Self { header, key: jsonwebtoken::EncodingKey::from_ec_der(&pkcs8), rng: rng.clone() })
    }

    fn proof(&self, url: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let claims =
            json!({ "jti": self.rng.identifier(), "htm": "POST", "htu": url, "iat": SystemClock.now() });
        jsonwebtoken::encode(&self.header, &claims, &self.key)
    }
}

/// Runs the load and prints one line like `bench/cc.lua`'s.
pub async fn run(args: &LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let rng = Rng::default();
    let prover = if args.dpop { Some(std::sync::Arc::new(Prover::new(&rng)?)) } else { None };
    let form = [("grant_type", "client_credentials".to_owned()), ("scope", args.scope.clone())];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (http, prover, form) = (http.clone(), prover.clone(), form.clone());
        let (url, id, secret) = (args.url.clone(), args.client_id.clone(), args.client_secret.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let mut request = http.post(&url).basic_auth(&id, Some(&secret)).form(&form);
                if let Some(prover) = &prover {
                    match prover.proof(&url) {
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
