//! The `tessera` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_core::random::Rng;
use tessera_core::{Clock as _, SystemClock};
use tracing::error;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: a token request allocates many small, short-lived
/// buffers (JSON, JWTs, SQL rows) across threads, where glibc's arenas cost a tenth
/// of the server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    ///
    /// When its store exists (a SQLite file that is there, a PostgreSQL server that
    /// answers), also lists the clients and users a start would remove because the
    /// file declared them before and no longer does. Nothing is removed.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Manage signing keys in the configured store.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage local user accounts in the configured store (the server need not run).
    ///
    /// A user added here is kept across starts unless the configuration file has a
    /// `[[users]]` entry with the same username: the configuration wins then, and every
    /// start writes its password and claims back over the store's.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// List the clients in the configured store (the server need not run).
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Sign in to an issuer with the device flow (RFC 8628), as a command-line tool does.
    ///
    /// Prints the page to open and the code to enter there (and a QR code of a link
    /// that carries the code), then waits for approval, polling at the server's pace.
    /// On success prints who signed in, the granted scope and when the access token
    /// expires, never the tokens: they are stored only with --save. Instructions and
    /// progress go to standard error, the summary to standard output.
    ///
    /// Exit status: 0 signed in, 1 failed, 2 usage error (or the --save file exists),
    /// 3 denied, 4 the code expired, 130 interrupted (Ctrl-C).
    Login {
        /// The issuer URL; `/.well-known/openid-configuration` below it names the endpoints.
        #[arg(long, value_parser = tessera::login::parse_issuer)]
        issuer: url::Url,
        /// The client to sign in with; it must be allowed the device grant.
        #[arg(long)]
        client_id: String,
        /// For a confidential client. Prefer the environment variable: other users can
        /// see a process's arguments.
        #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        /// The scopes to ask for, space-separated.
        #[arg(long, default_value = "openid profile offline_access")]
        scope: String,
        /// Write the token response (JSON) to FILE, readable by you only (mode 0600).
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// Replace the --save file if it exists.
        #[arg(long, requires = "save")]
        force: bool,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Run a backend-for-frontend for a single-page app (its own process, beside the SPA).
    ///
    /// Does the OpenID Connect code flow with any provider, keeps the tokens in a
    /// server-side session and proxies API calls with the token attached; the browser
    /// holds only an HttpOnly cookie. See `examples/bff.toml`.
    Bff {
        /// The BFF's configuration file (a `[bff]` table).
        #[arg(long, short, env = "TESSERA_BFF_CONFIG")]
        config: PathBuf,
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

#[derive(Subcommand)]
enum ClientsAction {
    /// One line per client: client id, source (`config`, …), name and grant types,
    /// tab-separated. Loads the configuration first, as a start would.
    List {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
    },
    /// Add a client (source `cli`) defined by a file with the keys of a `[[clients]]`
    /// table: TOML (`*.toml`) or JSON, `-` for standard input. Checked by the
    /// configuration's rules; a start never removes it.
    Add {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The client definition.
        file: PathBuf,
    },
    /// Remove a client that is not in the configuration file, revoking its grants and
    /// refresh tokens.
    Remove {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        client_id: String,
    },
    /// Give a confidential client (not one of the configuration file) a new random
    /// secret, printed once; its other shared secrets stop working.
    RotateSecret {
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        client_id: String,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Add a user; refused if the username exists.
    ///
    /// The password is prompted for twice without echo when standard input is a
    /// terminal; otherwise (or with --password-stdin) it is the first line of standard
    /// input. It must have at least 8 characters. A username also named in the
    /// configuration file is rewritten from it at every start.
    Add {
        /// The configuration file; its store is the one changed.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The sign-in name.
        username: String,
        /// The stable `sub`; a random one is generated when absent.
        #[arg(long)]
        subject: Option<String>,
        /// A claim released through identity scopes, as name=value (repeatable);
        /// `true` and `false` become booleans, anything else a string.
        #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = tessera::users::parse_claim)]
        claims: Vec<(String, serde_json::Value)>,
        /// Read the password from the first line of standard input, without prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's password, keeping its subject and claims.
    ///
    /// Read as for `add`. For a username named in the configuration file, the next
    /// start puts the configuration's password back.
    SetPassword {
        /// The configuration file; its store is the one changed.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The sign-in name.
        username: String,
        /// Read the password from the first line of standard input, without prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users, one a line: username, subject and claim names, tab-separated
    /// (never a password hash). Users from the configuration file are included.
    List {
        /// The configuration file; its store is the one read.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
    },
    /// Remove a user added with `add`, revoking its grants, refresh tokens, sessions
    /// and consents. A user of the configuration file is removed by deleting its
    /// `[[users]]` entry there instead (the next start removes it).
    Remove {
        /// The configuration file; its store is the one changed.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The sign-in name.
        username: String,
    },
    /// List a user's second factors (authenticator app, passkeys, recovery codes), or
    /// remove them all with --reset (a lost phone): the user then signs in with the
    /// password alone, or sets a factor up again where one is required.
    Mfa {
        /// The configuration file; its store is the one read or changed.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The sign-in name.
        username: String,
        /// Remove every second factor of the user.
        #[arg(long)]
        reset: bool,
    },
    /// Set up an authenticator app (TOTP, RFC 6238) for a user, replacing any, and
    /// print its otpauth:// URI: for scripted setups. A running server sees it at the
    /// user's next sign-in.
    Totp {
        /// The configuration file; its store is the one changed.
        #[arg(long, short, env = "TESSERA_CONFIG")]
        config: PathBuf,
        /// The sign-in name.
        username: String,
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
                for warning in &config.warnings {
                    println!("warning: {warning}");
                }
                check_store(&config).await
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
        Command::Users { action } => users(action).await,
        Command::Clients { action } => clients(action).await,
        Command::Login { issuer, client_id, client_secret, scope, save, force, no_qr } => {
            let options = tessera::login::Options {
                issuer,
                client_id,
                client_secret: client_secret.map(tessera_core::secret::Secret::new),
                scope,
                save,
                force,
                qr: !no_qr,
            };
            return tessera::login::run(&options).await;
        }
        Command::Bff { config } => return bff(&config).await,
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
    tessera::server::raise_descriptor_limit();
    let provider = tessera::server::prepare(&config, Arc::new(SystemClock)).await?;
    // Unusable TLS files fail here, before anything listens.
    let tls = tessera::server::tls_setup(&config)?;
    let listeners = tessera::server::Listeners::bind(&config).await?;
    tessera::server::serve(provider, tls, listeners, shutdown_signal()).await?;
    Ok(())
}

async fn bff(path: &std::path::Path) -> ExitCode {
    let config = match tessera_bff::config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            error!(%error, listen = %config.listen, "bff cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match tessera_bff::serve(config, Arc::new(tessera_bff::SystemClock), listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!(%error, "bff failed");
            ExitCode::FAILURE
        }
    }
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
        println!("announced keys {kid}: published now, signs after {} s", config.settings.signing.announce);
    }
    for key in provider.store.signing_keys().await? {
        println!(
            "generation {:>3}  kid {}  {}  activates {}  retires {}  unpublished {}",
            key.generation, key.kid, key.algorithm, key.activates_at, key.retires_at, key.expires_at
        );
    }
    Ok(())
}

async fn users(action: UsersAction) -> Result<(), tessera::server::StartError> {
    use tessera::users::{self, NewUser, PasswordSource};

    let source = |stdin: bool| if stdin { PasswordSource::Stdin } else { PasswordSource::Prompt };
    let path = match &action {
        UsersAction::Add { config, .. }
        | UsersAction::SetPassword { config, .. }
        | UsersAction::List { config }
        | UsersAction::Remove { config, .. }
        | UsersAction::Mfa { config, .. }
        | UsersAction::Totp { config, .. } => config,
    };
    let config = load_config(path).map_err(|_| "invalid configuration")?;
    let rng = Rng::default();
    let store = users::open_store(&config, &rng).await?;
    match action {
        UsersAction::Add { username, subject, claims, password_stdin, .. } => {
            let new = NewUser { username, subject, claims: users::claims_from(claims)? };
            let read = || users::read_password(source(password_stdin));
            let user = users::add(&store, new, read, &rng).await?;
            println!("added user {} (subject {})", user.username, user.subject);
        }
        UsersAction::SetPassword { username, password_stdin, .. } => {
            let read = || users::read_password(source(password_stdin));
            let user = users::set_password(&store, &username, read, &rng).await?;
            println!("password set for user {}", user.username);
            if users::named_in_config(&config, &username) {
                eprintln!(
                    "note: user {username} is in {}: the next start (or users command) puts its password back from there",
                    config.source
                );
            }
        }
        UsersAction::List { .. } => {
            for line in users::list(&store).await? {
                println!("{line}");
            }
        }
        UsersAction::Mfa { username, reset, .. } => {
            let user = users::find(&store, &username).await?;
            if reset {
                let removed = tessera_core::store::FactorStore::delete_factors(&store, &user.subject).await?;
                println!(
                    "{} for user {}",
                    if removed { "second factors removed" } else { "no second factors to remove" },
                    user.username
                );
            } else {
                let factors = tessera_core::mfa::factors_in(&store, &user.subject).await?;
                println!("authenticator app\t{}", if factors.totp { "set up" } else { "none" });
                for passkey in tessera_core::store::FactorStore::passkeys(&store, &user.subject).await? {
                    println!("passkey\t{}", passkey.name);
                }
                println!("recovery codes left\t{}", factors.recovery_codes);
            }
        }
        UsersAction::Totp { username, .. } => {
            let user = users::find(&store, &username).await?;
            let enrolment =
                tessera_core::mfa::enrol_totp(&store, &config.settings, &rng, &user, SystemClock.now())
                    .await?;
            println!("{}", enrolment.uri.expose());
        }
        UsersAction::Remove { username, .. } => {
            let user = users::remove(&store, &config, &username, SystemClock.now()).await?;
            println!(
                "removed user {} (subject {}); its grants and sessions are revoked",
                user.username, user.subject
            );
        }
    }
    Ok(())
}

async fn clients(action: ClientsAction) -> Result<(), tessera::server::StartError> {
    let path = match &action {
        ClientsAction::List { config }
        | ClientsAction::Add { config, .. }
        | ClientsAction::Remove { config, .. }
        | ClientsAction::RotateSecret { config, .. } => config,
    };
    let config = load_config(path).map_err(|_| "invalid configuration")?;
    let rng = Rng::default();
    let store = tessera::users::open_store(&config, &rng).await?;
    match action {
        ClientsAction::List { .. } => {
            for line in tessera::clients::list(&store).await? {
                println!("{line}");
            }
        }
        ClientsAction::Add { file, .. } => {
            let definition = tessera::clients::read_definition(&file)?;
            let client_id = tessera::clients::add(&store, &config, definition).await?;
            println!("added client {client_id}");
        }
        ClientsAction::Remove { client_id, .. } => {
            tessera::clients::remove(&store, &client_id, SystemClock.now()).await?;
            println!("removed client {client_id}; its grants and refresh tokens are revoked");
        }
        ClientsAction::RotateSecret { client_id, .. } => {
            let secret = tessera::clients::rotate_secret(&store, &client_id, &rng).await?;
            println!("{secret}");
            eprintln!(
                "new secret for client {client_id} (shown once); its other shared secrets no longer work"
            );
        }
    }
    Ok(())
}

/// `check-config` against the store: what a start would remove. A store that is not
/// there is not created (a SQLite file that does not exist, a server that does not
/// answer); that is said, and the check still passes.
async fn check_store(config: &tessera_config::Config) -> Result<(), tessera::server::StartError> {
    let url = &config.storage.url;
    if let Some(path) = tessera_store_sql::sqlite_file(url)
        && !std::path::Path::new(&path).exists()
    {
        println!("store {path} does not exist yet: a start removes nothing");
        return Ok(());
    }
    let store = match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tessera_store_sql::SqlStore::connect(url),
    )
    .await
    {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => {
            println!("store not reachable ({error}): could not say what a start would remove");
            return Ok(());
        }
        Err(_) => {
            println!("store not reachable (timed out): could not say what a start would remove");
            return Ok(());
        }
    };
    let removals = tessera::seed::planned_removals(&store, config).await?;
    if removals.is_empty() {
        println!("a start removes nothing from the store");
    }
    for client_id in &removals.clients {
        println!("a start removes client {client_id} (no longer declared) and revokes its grants");
    }
    for username in &removals.users {
        println!("a start removes user {username} (no longer declared) and revokes its grants and sessions");
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
