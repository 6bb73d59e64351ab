//! The `tessera` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_core::SystemClock;
use tracing::error;
use tracing_subscriber::EnvFilter;

/// Tessera: an OAuth 2.1 and OpenID Connect token service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TESSERA_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the token service.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file; exits non-zero listing every error.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Manage signing keys in the configured store.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Announce a new signing key now; it signs once `signing.announce` has passed.
    Rotate {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
    },
    /// List the stored signing keys and their schedule (no key material).
    List {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
    },
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: &std::path::Path) -> Result<tessera_config::Config, ExitCode> {
    tessera_config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let outcome = match cli.command {
        Command::CheckConfig { file } => match load_config(&file) {
            Ok(config) => {
                println!("{}: ok ({} clients)", config.source, config.clients.len());
                Ok(())
            }
            Err(code) => return code,
        },
        Command::Serve { config } => {
            let config = match load_config(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            serve(config).await
        }
        Command::Keys { action } => keys(action).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!(%error, "tessera failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: tessera_config::Config) -> Result<(), tessera::server::StartError> {
    let provider = tessera::server::prepare(&config, Arc::new(SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
    tessera::server::serve(provider, listener, shutdown_signal()).await?;
    Ok(())
}

async fn keys(action: KeysAction) -> Result<(), tessera::server::StartError> {
    let path = match &action {
        KeysAction::Rotate { config } | KeysAction::List { config } => config,
    };
    let config = load_config(path).map_err(|_| "invalid configuration")?;
    let provider = tessera::server::prepare(&config, Arc::new(SystemClock)).await?;
    let now = provider.clock.now();
    if matches!(action, KeysAction::Rotate { .. }) {
        let kid = provider.keys.rotate(now).await?;
        println!("announced key {kid}: published now, signs after {} s", config.settings.signing.announce);
    }
    for key in provider.store.signing_keys().await? {
        println!(
            "generation {:>3}  kid {}  {}  activates {}  retires {}  unpublished {}",
            key.generation, key.kid, key.algorithm, key.activates_at, key.retires_at, key.expires_at
        );
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM: in-flight requests then finish (graceful shutdown).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
