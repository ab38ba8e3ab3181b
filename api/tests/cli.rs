//! The `chargeledger` binary: help, tokens, API keys, audit and rebuild.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use chargeledger_api::{auth::TokenVerifier, config::Config};
use serde_json::json;
use sqlx::PgPool;
use support::*;
use uuid::Uuid;

/// A strong secret for the tools (weak ones are refused).
const CLI_SECRET: &str = "cli-3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e4b6d8f";

fn chargeledger(db_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chargeledger"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHARGELEDGER_DATABASE_URL", db_url)
        .env("CHARGELEDGER_JWT_SECRET", CLI_SECRET)
        .env("CHARGELEDGER_LOG", "warn")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_documents_every_subcommand_and_setting() {
    let out = chargeledger("postgres://unused/x", &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "serve",
        "api",
        "project",
        "migrate",
        "audit",
        "projections",
        "api-key",
        "token",
        "bench",
        "CHARGELEDGER_DATABASE_URL",
        "DATABASE_URL",
        "CHARGELEDGER_HTTP_ADDR",
        "127.0.0.1:8080",
        "CHARGELEDGER_JWT_SECRET",
        "CHARGELEDGER_JWT_PUBLIC_KEY_FILE",
        "CHARGELEDGER_CONFIG",
        "CHARGELEDGER_DB_MAX_CONNECTIONS",
        "CHARGELEDGER_TERMINAL_ONLINE_SECS",
        "CHARGELEDGER_CONSISTENCY_WAIT_MS",
        "CHARGELEDGER_SEAL_INTERVAL_MS",
        "CHARGELEDGER_LOG",
    ] {
        assert!(help.contains(needle), "--help does not mention {needle}:\n{help}");
    }
    for sub in [
        vec!["audit", "verify", "--help"],
        vec!["projections", "rebuild", "--help"],
        vec!["token", "--help"],
        vec!["api-key", "create", "--help"],
    ] {
        let out = chargeledger("postgres://unused/x", &sub);
        assert!(out.status.success() && !out.stdout.is_empty(), "{sub:?}");
    }
    let bad = chargeledger("postgres://unused/x", &["token", "--company", "not-a-uuid"]);
    assert!(!bad.status.success());
}

#[test]
fn token_prints_a_jwt_signed_with_the_configured_secret() {
    let company = Uuid::new_v4().to_string();
    let out =
        chargeledger("postgres://unused/x", &["token", "--company", &company, "--role", "viewer", "--ttl", "30m"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let mut config = Config::for_tests(String::new());
    config.jwt_secret = CLI_SECRET.to_owned().into();
    let claims = TokenVerifier::new(&config).unwrap().verify(&token).unwrap();
    assert_eq!(claims.company.to_string(), company);
    assert_eq!(claims.exp - claims.iat, 1800);
    config.jwt_secret = "other".to_owned().into();
    assert!(TokenVerifier::new(&config).unwrap().verify(&token).is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn api_keys_audit_and_rebuild_from_the_command_line(pool: PgPool) {
    let db = test_config(&pool).database_url;
    let app = TestApp::start(pool.clone()).await;
    let company = Uuid::new_v4();

    let out = chargeledger(
        &db,
        &["api-key", "create", "--company", &company.to_string(), "--role", "operator", "--name", "ci"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    assert!(key.starts_with("clk_"));
    for id in ["EVSE-C1", "EVSE-C2"] {
        let r = app
            .client
            .post(app.url("/v1/terminals"))
            .header("x-api-key", &key)
            .json(&terminal(id, 3))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 201, "{body}");
    }
    app.client
        .post(app.url("/v1/terminals/EVSE-C1/health-events"))
        .header("x-api-key", &key)
        .json(&json!({"kind": "heartbeat"}))
        .send()
        .await
        .unwrap();
    let before: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_terminals.terminals t ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();

    let out = chargeledger(&db, &["projections", "rebuild", "terminals"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("rebuilding terminals:"), "progress is shown: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rebuilt terminals"));
    let after: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_terminals.terminals t ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before, after);

    commands::seal::seal_all(&app.running.state.store).await.unwrap();
    let out = chargeledger(&db, &["audit", "verify"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("OK: "), "{stdout}");
    // The latest seal's digest is printed, for the auditor to publish and pass back as an anchor.
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("latest seal: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no latest seal in {stdout}"))
        .to_owned();
    assert_eq!(digest.len(), 64, "{stdout}");
    app.running.stop().await;
    let out = chargeledger(&db, &["audit", "verify", "--anchor", &digest]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("anchor {digest}: found at position")), "{}", text(&out.stdout));
    let bogus = "0".repeat(63) + "1";
    let out = chargeledger(&db, &["audit", "verify", "--anchor", &digest, "--anchor", &bogus]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("anchor not found"), "{}", text(&out.stdout));
    // Operational errors are 2, never 1: a malformed anchor, an unreachable database.
    let out = chargeledger(&db, &["audit", "verify", "--anchor", "not-hex"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = chargeledger("postgres://postgres@127.0.0.1:1/nowhere", &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let victims: Vec<(i64, String)> = sqlx::query_as(
        "SELECT position, stream_id FROM events WHERE stream_id LIKE 'terminal-EVSE-C%' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(victims.len() >= 2);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    for (position, _) in &victims[..2] {
        sqlx::query("UPDATE events SET payload = jsonb_set(payload, '{vendor}', '\"Forged\"') WHERE position = $1")
            .bind(position)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let out = chargeledger(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("BROKEN: 2 findings"), "{stdout}");
    for (position, stream) in &victims[..2] {
        assert!(stdout.contains(&format!("position {position} stream {stream}: content altered: ")), "{stdout}");
    }
    let out = chargeledger(&db, &["audit", "verify", "--json", "--max-findings", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["totalFindings"], 2, "{report}");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["findings"][0]["kind"], "content_altered", "{report}");
    assert_eq!(report["findings"][0]["position"], victims[0].0, "{report}");
}
