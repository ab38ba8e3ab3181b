//! Test charge points: the PyPI `ocpp` package driven by tests/ocpp/chargepoint.py.
#![allow(dead_code, clippy::unwrap_used)]

use std::{process::Stdio, time::Duration};

use serde_json::Value;

use super::python;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub const PASSWORD: &str = "a-long-enough-secret-1";

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ocpp/chargepoint.py")
}

/// A running test charge point.
pub struct Cp {
    pub child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Cp {
    pub fn spawn(scenario: &str, base: &str, id: &str, password: &str, extra: &[&str]) -> Self {
        let python = python();
        assert!(
            python.exists(),
            "{} missing: run ./scripts/test.sh (it creates the venv with the ocpp package)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(script())
            .arg(scenario)
            .arg(base)
            .arg(id)
            .arg(password)
            .args(extra)
            .env("CHARGELEDGER_TEST_CA", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ocpp-tls-cert.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// Waits for a line starting with `prefix`; returns the rest.
    pub async fn until(&mut self, prefix: &str) -> String {
        let wait = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
            }
            panic!("the charge point ended before printing {prefix}");
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.expect("charge point timed out")
    }

    pub async fn result(mut self) -> Value {
        let json = self.until("RESULT ").await;
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "charge point failed: {status}");
        serde_json::from_str(&json).unwrap()
    }
}

pub async fn run(scenario: &str, base: &str, id: &str, password: &str, extra: &[&str]) -> Value {
    Cp::spawn(scenario, base, id, password, extra).result().await
}

/// An app with its OCPP gateway, an operator token of a fresh company and the
/// gateway's base URL (`ws://…/ocpp`).
pub struct Setup {
    pub app: super::TestApp,
    pub token: String,
    pub company: uuid::Uuid,
    pub base: String,
}

/// Starts the app on the test's database with `configure` applied.
pub async fn setup(pool: sqlx::PgPool, configure: impl FnOnce(&mut chargeledger_api::config::Config)) -> Setup {
    let mut config = super::test_config(&pool);
    configure(&mut config);
    let app = super::TestApp::start_with(config, pool).await;
    let company = uuid::Uuid::new_v4();
    let token = app.token(company, chargeledger_api::auth::Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    Setup { app, token, company, base }
}
