//! Secrets (issue 10, rule 5): no role starts with a forgeable JWT secret,
//! the data key is its own setting, `iss`/`aud` are checked when configured,
//! and the run command's generated secrets are stable.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use chargeledger_api::{
    auth::{self, Role, TokenVerifier},
    config::DEV_JWT_SECRET,
};
use commands::infrastructure::credentials::{self, CredentialCipher};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::PgPool;
use support::*;
use uuid::Uuid;

const STRONG: &str = "8c1f4e2a9b7d3c6e5f0a1b2c3d4e5f60718293a4b5c6d7e8";
const DATA_KEY: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7081";

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chargeledger"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Never reached when the secrets are refused; unreachable on purpose.
        .env("CHARGELEDGER_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("CHARGELEDGER_HTTP_ADDR", "127.0.0.1:0")
        .env("CHARGELEDGER_OCPP_ADDR", "127.0.0.1:0")
        .env("CHARGELEDGER_LOG", "error");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const TOKEN: &[&str] = &["token", "--company", "5b0a7c9e-3d1f-4f6a-9c2e-8a4b6d0e1f23"];

fn every_role() -> Vec<Vec<&'static str>> {
    let mut all: Vec<Vec<&str>> =
        ["serve", "api", "ocpp", "project", "relay", "workers"].into_iter().map(|r| vec![r]).collect();
    all.push(TOKEN.to_vec());
    all
}

#[test]
fn every_role_and_token_refuse_a_missing_default_or_short_jwt_secret() {
    let weak: [(&str, Option<&str>); 5] = [
        ("unset", None),
        ("the old development default", Some(DEV_JWT_SECRET)),
        ("short", Some("a-31-byte-secret-is-too-short!!")),
        ("the old compose default", Some("change-me")),
        ("32 bytes of little variety", Some("abababababababababababababababab")),
    ];
    for args in every_role() {
        for (what, secret) in &weak {
            let mut env = vec![("CHARGELEDGER_SECRETS_KEY", DATA_KEY)];
            if let Some(s) = secret {
                env.push(("CHARGELEDGER_JWT_SECRET", s));
            }
            let out = run(&args, &env);
            assert!(!out.status.success(), "{args:?} started with {what} JWT secret");
            let err = stderr(&out);
            assert!(err.contains("CHARGELEDGER_JWT_SECRET"), "{args:?} with {what}: {err}");
            assert!(out.stdout.is_empty(), "{args:?} printed something with {what}");
        }
    }
    // A strong secret gets past the check: `token` prints a token, `relay` stops at
    // its own requirement (Kafka), not at the secret.
    let strong = [("CHARGELEDGER_JWT_SECRET", STRONG), ("CHARGELEDGER_SECRETS_KEY", DATA_KEY)];
    assert!(run(TOKEN, &strong).status.success());
    let relay = run(&["relay"], &strong);
    assert!(stderr(&relay).contains("CHARGELEDGER_KAFKA_BROKERS"), "{}", stderr(&relay));
}

#[test]
fn api_and_serve_refuse_without_their_own_data_key() {
    for role in ["api", "serve"] {
        let out = run(&[role], &[("CHARGELEDGER_JWT_SECRET", STRONG)]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("CHARGELEDGER_SECRETS_KEY is not set"), "{role}: {}", stderr(&out));
        let same = run(&[role], &[("CHARGELEDGER_JWT_SECRET", STRONG), ("CHARGELEDGER_SECRETS_KEY", STRONG)]);
        assert!(stderr(&same).contains("must differ from CHARGELEDGER_JWT_SECRET"), "{role}: {}", stderr(&same));
        let short = run(&[role], &[("CHARGELEDGER_JWT_SECRET", STRONG), ("CHARGELEDGER_SECRETS_KEY", "short")]);
        assert!(stderr(&short).contains("CHARGELEDGER_SECRETS_KEY is shorter"), "{role}: {}", stderr(&short));
    }
}

#[test]
fn token_sets_the_configured_issuer_and_audience() {
    let env = [
        ("CHARGELEDGER_JWT_SECRET", STRONG),
        ("CHARGELEDGER_JWT_ISSUER", "https://auth.example"),
        ("CHARGELEDGER_JWT_AUDIENCE", "chargeledger-api"),
    ];
    let out = run(TOKEN, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut config = chargeledger_api::config::Config::for_tests(String::new());
    config.jwt_secret = SecretString::from(STRONG);
    config.jwt_issuer = Some("https://auth.example".into());
    config.jwt_audience = Some("chargeledger-api".into());
    let claims = TokenVerifier::new(&config).unwrap().verify(&token).unwrap();
    assert_eq!(
        (claims.iss.as_deref(), claims.aud.as_deref()),
        (Some("https://auth.example"), Some("chargeledger-api"))
    );
    config.jwt_audience = Some("another-api".into());
    assert!(TokenVerifier::new(&config).unwrap().verify(&token).is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn tokens_of_another_issuer_or_audience_are_refused(pool: PgPool) {
    let mut config = test_config(&pool);
    config.jwt_issuer = Some("https://auth.example".into());
    config.jwt_audience = Some("chargeledger-api".into());
    let app = TestApp::start_with(config.clone(), pool).await;
    let company = Uuid::new_v4();
    let good = app.token(company, Role::Viewer);
    assert_eq!(json_of(app.get("/v1/terminals", &good).send().await.unwrap()).await.0, 200);
    let mint = |issuer: Option<&str>, audience: Option<&str>| {
        let mut other = config.clone();
        other.jwt_issuer = issuer.map(Into::into);
        other.jwt_audience = audience.map(Into::into);
        auth::mint_token(&other, "tester", company, Role::Viewer, chrono::Duration::hours(1)).unwrap()
    };
    for (what, token) in [
        ("another issuer", mint(Some("https://evil.example"), Some("chargeledger-api"))),
        ("another audience", mint(Some("https://auth.example"), Some("another-api"))),
        ("no issuer", mint(None, Some("chargeledger-api"))),
        ("no audience", mint(Some("https://auth.example"), None)),
    ] {
        let (status, body) = json_of(app.get("/v1/terminals", &token).send().await.unwrap()).await;
        assert_eq!((status, body["type"].as_str()), (401, Some("urn:chargeledger:problem:unauthorized")), "{what}");
    }
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn credentials_are_sealed_with_the_data_key_not_the_jwt_secret(pool: PgPool) {
    let config = test_config(&pool);
    let data_key = config.secrets_key.as_ref().unwrap().expose_secret().to_owned();
    let jwt_secret = config.jwt_secret.expose_secret().to_owned();
    let app = TestApp::start_with(config.clone(), pool.clone()).await;
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Admin);
    let body = json!({"credentials": {"apiToken": "tok-sealed-value-1"}});
    let response = app
        .client
        .patch(app.url("/v1/charging-infrastructure/config/ocpp"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await.0, 200);
    app.running.stop().await;

    let open = |key: &str| {
        let cipher = CredentialCipher::derive(key.as_bytes()).unwrap();
        let pool = pool.clone();
        async move { credentials::load(&pool, &cipher, company, domain::infrastructure::AdapterType::Ocpp).await.unwrap() }
    };
    let (opened, unreadable) = open(&data_key).await;
    assert_eq!(opened.get("apiToken").map(|v| v.expose_secret().to_owned()).as_deref(), Some("tok-sealed-value-1"));
    assert!(unreadable.is_empty());
    let (opened, _) = open(&jwt_secret).await;
    assert!(opened.is_empty(), "the JWT secret must not open credentials");

    // A new JWT secret, the same data key: the credentials still open through the app.
    let mut rotated = config.clone();
    rotated.jwt_secret = SecretString::from(chargeledger_api::config::Config::random_secret());
    let app = TestApp::start_with(rotated, pool.clone()).await;
    let (opened, unreadable) = open(&data_key).await;
    assert_eq!((opened.len(), unreadable.len()), (1, 0));
    app.running.stop().await;

    // Without a data key the app does not start (as `api` and `serve` do not).
    let mut keyless = config;
    keyless.secrets_key = None;
    let error = chargeledger_api::app::start(keyless, pool, false).await.unwrap_err();
    assert!(format!("{error:#}").contains("CHARGELEDGER_SECRETS_KEY is not set"), "{error:#}");
}

#[test]
fn the_run_command_generates_its_secrets_once() {
    let dir = std::env::temp_dir().join(format!("chargeledger-secrets-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib.sh");
    let generate = || {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(". {lib}; ensure_local_secrets; echo \"$CHARGELEDGER_JWT_SECRET $CHARGELEDGER_SECRETS_KEY\""))
            .current_dir(&dir)
            .env_remove("CHARGELEDGER_JWT_SECRET")
            .env_remove("CHARGELEDGER_SECRETS_KEY")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = generate();
    let second = generate();
    assert_eq!(first, second, "the second run reuses the generated secrets");
    let (jwt, key) = first.split_once(' ').unwrap();
    assert_ne!(jwt, key);
    for secret in [jwt, key] {
        assert_eq!(secret.len(), 64);
        assert_eq!(chargeledger_api::config::weakness(secret), None);
    }
    let file = dir.join(".chargeledger/secrets.env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // What the file holds is what `token` signs with, and it is accepted.
    let out = run(TOKEN, &[("CHARGELEDGER_JWT_SECRET", jwt)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ignored = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == "/.chargeledger/"), "the secrets file is git-ignored");
    std::fs::remove_dir_all(&dir).unwrap();
}
