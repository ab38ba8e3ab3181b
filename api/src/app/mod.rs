//! The roles: each is a function `run_x(config, shutdown)` so tests can start
//! any of them on port 0.

mod build;
mod docs;
mod roles;
mod router;
mod running;
mod workers;

use anyhow::Context;
use sqlx::{postgres::PgPoolOptions, PgPool};

pub use self::{
    build::{bind_gateway, payment_gateway, state},
    roles::{run_api, run_ocpp, run_project, run_relay, run_serve, run_workers},
    router::{bind_api, metrics_router, router, Bound},
    running::{start, Running},
    workers::{spawn_projectors, spawn_relay, spawn_signals, spawn_workers},
};
use crate::config::Config;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects to Postgres.
pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .with_context(|| "cannot connect to Postgres (CHARGELEDGER_DATABASE_URL)")
}

/// Connects to the primary the log is written on, refusing a standby, a
/// logical-replication subscriber and a restored copy whose transaction
/// counter is behind the log (ADR 0002, deployment rules).
pub async fn connect_writable(config: &Config) -> anyhow::Result<PgPool> {
    let pool = connect(config).await?;
    commands::deployment::check_writable(&pool).await?;
    Ok(pool)
}

/// Creates the configured database when it does not exist yet.
pub async fn create_database_if_missing(config: &Config) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(&config.database_url).await.context("cannot reach Postgres")? {
        tracing::info!("creating the database");
        sqlx::Postgres::create_database(&config.database_url).await.context("cannot create the database")?;
    }
    Ok(())
}

/// Applies pending migrations, after checking that the log may be written
/// here (a restore with a counter behind the log is refused before anything runs).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    commands::deployment::check_writable(pool).await?;
    MIGRATOR.run(pool).await.context("migrations failed")
}

/// Refuses to start with a missing, short or published JWT secret (every
/// role, whatever it binds) and, for the roles that serve requests, without a
/// data key of its own (ADR 0015).
pub fn check_secrets(config: &Config, serves_requests: bool) -> anyhow::Result<()> {
    config.check_jwt_secret()?;
    if serves_requests {
        config.check_secrets_key()?;
    }
    Ok(())
}
