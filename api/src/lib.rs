//! The chargeledger HTTP API and the composition root of the `chargeledger` binary.

pub mod app;
pub mod auth;
pub mod bench;
pub mod bench_lag;
pub mod bench_ocpp;
pub mod bench_relay;
pub mod bench_storm;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod directory;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod routes;
pub mod serve;
pub mod state;
