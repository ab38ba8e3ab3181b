//! Command-line interface: one binary, several roles and tools.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};
use commands::EventStore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{app, auth, config::Config};

/// chargeledger: event-sourced e-mobility platform (OCPP, charge orchestration, payments).
#[derive(Debug, Parser)]
#[command(name = "chargeledger", version, after_long_help = crate::config::settings_help(), after_help = "Run with --help for every setting.")]
pub struct Cli {
    /// TOML configuration file (also CHARGELEDGER_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, then run every role in one process (API, OCPP gateway, projectors, sealer, workers, and the Kafka
    /// relay when brokers are configured). The default way to run.
    Serve,
    /// Run the HTTP API only.
    Api,
    /// Run the OCPP gateway only (ws://CHARGELEDGER_OCPP_ADDR/ocpp/{chargePointId}).
    Ocpp,
    /// Run the workers only (payment reconciliation).
    Workers,
    /// Run the projectors and the log sealer only.
    Project,
    /// Run the Kafka relay only: publish the log to CHARGELEDGER_KAFKA_BROKERS.
    Relay,
    /// Apply database migrations and exit.
    Migrate,
    /// Auditor tools.
    Audit {
        /// Audit action.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Read-model tools.
    Projections {
        /// Projection action.
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// API key tools.
    ApiKey {
        /// API key action.
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// Print a JWT signed with the configured secret (HS256), with the configured `iss`/`aud`; refuses a weak secret.
    Token {
        /// Company id (uuid) the token is scoped to.
        #[arg(long)]
        company: Uuid,
        /// Role.
        #[arg(long, value_enum, default_value = "admin")]
        role: auth::Role,
        /// Lifetime, such as 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: chrono::Duration,
        /// Subject (user id).
        #[arg(long, default_value = "cli")]
        sub: String,
    },
    /// Print the OpenAPI document (what schemas/openapi.json holds).
    Openapi,
    /// Write the event JSON Schemas into a directory (schemas/events).
    Schemas {
        /// Target directory.
        #[arg(long, default_value = "schemas/events")]
        out: PathBuf,
    },
    /// Write the event catalogue for analysts (Kafka topics, headers, fields, examples) from the event schemas.
    Catalogue {
        /// Directory of the event JSON Schemas (and their examples/).
        #[arg(long, default_value = "schemas/events")]
        schemas: PathBuf,
        /// Markdown file to write.
        #[arg(long, default_value = "docs/events.md")]
        out: PathBuf,
    },
    /// Benchmarks against the configured Postgres (in a scratch database).
    Bench {
        /// Benchmark.
        #[command(subcommand)]
        which: BenchWhich,
    },
}

/// `audit` actions.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every stream's hash chain and every seal and report every broken link: ordering fault, missing event,
    /// content altered, chain link broken, seal mismatch, anchor not found. Exit 0 when the log verifies, 1 with
    /// findings, 2 when the check could not run.
    Verify {
        /// A seal digest (64 hex characters) published elsewhere, such as the `seal` field of a `log.range_sealed`
        /// event consumed from the Kafka topic `<prefix>.log`: the log verifies only if a seal with exactly this
        /// digest is in its seal chain and the chain verifies up to it. Repeatable.
        #[arg(long = "anchor", value_name = "SEAL_DIGEST", value_parser = parse_seal_digest)]
        anchors: Vec<commands::hashing::Hash>,
        /// Findings listed; later ones are only counted.
        #[arg(long, value_name = "N", default_value_t = commands::audit::DEFAULT_MAX_FINDINGS)]
        max_findings: usize,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_seal_digest(s: &str) -> Result<commands::hashing::Hash, String> {
    commands::hashing::parse_hex_hash(s.trim()).ok_or_else(|| "a seal digest is 64 hex characters".to_owned())
}

/// `projections` actions.
#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Rebuild a read model from the log while the old one keeps serving, then swap.
    Rebuild {
        /// Projector name (see `projections list`).
        name: String,
    },
    /// List projectors with their checkpoints.
    List,
}

/// `api-key` actions.
#[derive(Debug, Subcommand)]
pub enum ApiKeyAction {
    /// Create an API key for a company; it is printed once and stored hashed.
    Create {
        /// Company id.
        #[arg(long)]
        company: Uuid,
        /// Role.
        #[arg(long, value_enum, default_value = "operator")]
        role: auth::Role,
        /// A name to recognise it by.
        #[arg(long, default_value = "default")]
        name: String,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhich {
    /// Kafka relay throughput (backlog drain vs a bare producer) and lag under a steady append load.
    Relay {
        /// Kafka bootstrap servers (default: CHARGELEDGER_KAFKA_BROKERS).
        #[arg(long)]
        brokers: Option<String>,
        /// Events in the backlog.
        #[arg(long, default_value_t = 50_000)]
        events: usize,
        /// Appends per second during the steady load.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        /// Seconds of steady load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Log reader lag while 0..16 projector-style read-model transactions run,
    /// declared read-only for the log vs plain transactions.
    Lag {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// How long each read-model transaction stays open, in ms (a batch's apply time).
        #[arg(long, default_value_t = 50)]
        hold_ms: u64,
    },
    /// Event-log appends per second vs plain INSERTs (1, 8, 32 writers; batches of 100).
    Append {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// OCPP gateway under N charge points sending MeterValues, vs a WebSocket echo server.
    Ocpp {
        /// Concurrent charge points.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// MeterValues per second, all charge points together.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Seconds of steady load per run.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Instead: a reconnect storm of `--connections` chargers with passwords
        /// (peak RSS and connect rate, cold and with cached verifications).
        #[arg(long)]
        passwords: bool,
    },
    /// The load generator of `bench ocpp --passwords` (runs in its own process).
    #[command(hide = true)]
    OcppStormLoad {
        /// Base URL (ws://host:port/ocpp).
        #[arg(long)]
        url: String,
        /// Chargers.
        #[arg(long)]
        connections: usize,
        /// Their password.
        #[arg(long)]
        password: String,
    },
    /// The load generator of `bench ocpp` (runs in its own process).
    #[command(hide = true)]
    OcppLoad {
        /// Base URL (ws://host:port/ocpp).
        #[arg(long)]
        url: String,
        /// Concurrent charge points.
        #[arg(long)]
        connections: usize,
        /// MeterValues per second in all.
        #[arg(long)]
        rate: f64,
        /// Seconds of steady load.
        #[arg(long)]
        seconds: u64,
    },
}

fn parse_ttl(raw: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = number.parse().map_err(|_| format!("{raw:?}: expected a number and a unit (s, m, h, d)"))?;
    let ttl = match unit {
        "s" | "" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(format!("{raw:?}: unit must be s, m, h or d")),
    };
    if n <= 0 {
        return Err("ttl must be positive".into());
    }
    Ok(ttl)
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

/// What `audit verify` prints: a summary line, then the latest seal and the
/// anchors, then one line per finding.
pub fn audit_text(report: &commands::audit::AuditReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.ok() {
        let _ = writeln!(
            out,
            "OK: {} events in {} streams verified; {} seals cover positions up to {}; {} later events are chained, not yet sealed",
            report.events, report.streams, report.seals, report.sealed_through, report.unsealed
        );
    } else {
        let listed = report.findings.len() as u64;
        let more = report.total_findings - listed;
        let _ = write!(
            out,
            "BROKEN: {} {} in {} events of {} streams ({} seals checked)",
            report.total_findings,
            if report.total_findings == 1 { "finding" } else { "findings" },
            report.events,
            report.streams,
            report.seals
        );
        if more > 0 {
            let _ = write!(out, "; {listed} listed, {more} more not listed (raise --max-findings)");
        }
        out.push('\n');
    }
    match &report.latest_seal {
        Some(seal) => {
            let _ = writeln!(
                out,
                "latest seal: {} (positions up to {}, seal event at position {})",
                seal.digest, seal.to_position, seal.position
            );
        }
        None => out.push_str("latest seal: none yet\n"),
    }
    for anchor in &report.anchors {
        let _ = match anchor.found_at {
            Some(position) => {
                writeln!(out, "anchor {}: found at position {position}, chain verified up to it", anchor.digest)
            }
            None => writeln!(out, "anchor {}: NOT FOUND", anchor.digest),
        };
    }
    for f in &report.findings {
        let _ = writeln!(out, "position {} stream {}: {}: {}", f.position, f.stream_id, f.kind, f.detail);
    }
    out
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    init_tracing(&config);
    match cli.command {
        Command::Serve => app::run_serve(config, shutdown_on_signal()).await?,
        Command::Api => app::run_api(config, shutdown_on_signal()).await?,
        Command::Ocpp => app::run_ocpp(config, shutdown_on_signal()).await?,
        Command::Workers => app::run_workers(config, shutdown_on_signal()).await?,
        Command::Project => app::run_project(config, shutdown_on_signal()).await?,
        Command::Relay => app::run_relay(config, shutdown_on_signal()).await?,
        Command::Migrate => {
            app::create_database_if_missing(&config).await?;
            app::migrate(&app::connect(&config).await?).await?;
            println!("migrations applied");
        }
        Command::Audit { action: AuditAction::Verify { anchors, max_findings, json } } => {
            let store = EventStore::new(app::connect(&config).await?);
            let options = commands::audit::VerifyOptions { max_findings, anchors };
            let report = commands::audit::verify_with(&store, &options).await?;
            if json {
                let mut value = serde_json::to_value(&report)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("ok".into(), report.ok().into());
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", audit_text(&report));
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Projections { action: ProjectionsAction::List } => {
            let pool = app::connect(&config).await?;
            for p in projections::all() {
                println!("{:<20} checkpoint {}", p.name(), projections::runtime::checkpoint(&pool, p.name()).await?);
            }
        }
        Command::Projections { action: ProjectionsAction::Rebuild { name } } => {
            let projector = projections::by_name(&name).with_context(|| format!("no projector named {name}"))?;
            // A rebuild on a standby or a restore behind the log would swap in
            // a read model missing events: refused like every writer.
            let store = EventStore::new(app::connect_writable(&config).await?);
            let mut stderr = std::io::stderr();
            let applied = projections::runtime::rebuild(&store, projector.as_ref(), |done, total| {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                let _ = write!(stderr, "\rrebuilding {name}: {done}/{total} events ({pct}%)");
                let _ = stderr.flush();
            })
            .await?;
            eprintln!();
            println!("rebuilt {name} from {applied} events and swapped it in");
        }
        Command::ApiKey { action: ApiKeyAction::Create { company, role, name } } => {
            let pool = app::connect(&config).await?;
            let (id, key) = auth::create_api_key(&pool, company, role, &name).await?;
            eprintln!("api key {id} for company {company} (role {}); shown once, stored hashed:", role.as_str());
            println!("{key}");
        }
        Command::Token { company, role, ttl, sub } => {
            // A token signed with a forgeable secret would be accepted by nobody careful.
            config.check_jwt_secret()?;
            println!("{}", auth::mint_token(&config, &sub, company, role, ttl)?);
        }
        Command::Openapi => print!("{}", crate::openapi::json()),
        Command::Schemas { out } => {
            std::fs::create_dir_all(&out)?;
            for s in domain::schema::all() {
                let path = out.join(s.file_name());
                std::fs::write(&path, serde_json::to_string_pretty(&s.schema)? + "\n")?;
                println!("wrote {}", path.display());
            }
        }
        Command::Catalogue { schemas, out } => {
            let markdown = crate::catalogue::render(&schemas).map_err(anyhow::Error::msg)?;
            std::fs::write(&out, markdown).with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        Command::Bench { which: BenchWhich::Relay { brokers, events, rate, seconds } } => {
            let Some(brokers) = brokers.or_else(|| config.kafka.as_ref().map(|k| k.brokers.clone())) else {
                anyhow::bail!("bench relay needs --brokers or CHARGELEDGER_KAFKA_BROKERS");
            };
            crate::bench_relay::relay(&config.database_url, &brokers, events, rate, seconds).await?;
        }
        Command::Bench { which: BenchWhich::Lag { seconds, hold_ms } } => {
            crate::bench_lag::lag(&config.database_url, seconds, hold_ms).await?;
        }
        Command::Bench { which: BenchWhich::Append { seconds } } => {
            crate::bench::append(&config.database_url, seconds).await?;
        }
        Command::Bench { which: BenchWhich::Ocpp { connections, passwords: true, .. } } => {
            crate::bench_storm::passwords(&config, connections).await?;
        }
        Command::Bench { which: BenchWhich::Ocpp { connections, rate, seconds, passwords: false } } => {
            crate::bench_ocpp::ocpp(&config, connections, rate, seconds).await?;
        }
        Command::Bench { which: BenchWhich::OcppStormLoad { url, connections, password } } => {
            crate::bench_storm::load(&url, connections, &password).await?;
        }
        Command::Bench { which: BenchWhich::OcppLoad { url, connections, rate, seconds } } => {
            crate::bench_ocpp::load(&url, connections, rate, seconds).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
