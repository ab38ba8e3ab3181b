//! What each subcommand does.

use std::{io::Write, process::ExitCode};

use anyhow::Context;
use commands::EventStore;
use tokio_util::sync::CancellationToken;

use super::{ApiKeyAction, AuditAction, BenchWhich, Cli, Command, ProjectionsAction};
use crate::{app, auth, config::Config};

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
