//! Command-line interface: one binary, several roles and tools.

mod handlers;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use uuid::Uuid;

pub use self::handlers::{audit_text, run};
use crate::auth;

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

/// The binary's subcommands: server roles, tools and benchmarks.
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
        /// Role the token grants (its `role` claim).
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
        /// Which benchmark to run.
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
        /// Role the key grants (not `driver`: drivers sign in with tokens).
        #[arg(long, value_enum, default_value = "operator")]
        role: auth::Role,
        /// A name to recognise it by.
        #[arg(long, default_value = "default")]
        name: String,
    },
}

/// The `bench` subcommands: benchmarks and their hidden load generators.
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
        /// Chargers that connect in the storm, all with the same password.
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
