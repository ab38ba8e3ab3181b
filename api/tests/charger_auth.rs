//! Chargers authenticate (issue 10, rule 6): a terminal without a password is
//! registered only as explicit security profile 0; a charger's password can be
//! rotated (the old one refused at once by the handshake, a connected charger
//! kept); auto-registration is off by default and fails closed. Driven by real
//! `ocpp` package charge points (tests/ocpp/chargepoint.py).
#![allow(clippy::unwrap_used)]

mod support;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, *};
use uuid::Uuid;

const NEW_PASSWORD: &str = "the-rotated-secret-42";

impl Setup {
    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.app.running.state.pool).await.unwrap()
    }

    async fn register(&self, body: &Value) -> (u16, Value) {
        json_of(self.app.post("/v1/terminals", &self.token, body).send().await.unwrap()).await
    }

    async fn rotate(&self, token: &str, id: &str, body: &Value) -> (u16, Value) {
        let path = format!("/v1/terminals/{id}/charger-password");
        json_of(self.app.put(&path, token, body).send().await.unwrap()).await
    }

    /// The handshake's answer: `"open"` or the HTTP status it was refused with.
    async fn connect(&self, id: &str, password: &str) -> Value {
        run("connect", &self.base, id, password, &["ocpp1.6"]).await["status"].clone()
    }
}

fn without_password(id: &str) -> Value {
    let mut body = terminal(id, 5);
    body.as_object_mut().unwrap().remove("chargerPassword");
    body
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_terminal_without_a_password_is_registered_only_as_explicit_profile_0(pool: PgPool) {
    let s = setup(pool, |_| {}).await;

    let (status, problem) = s.register(&without_password("EVSE-P0")).await;
    assert_eq!((status, fields(&problem)), (422, vec!["chargerPassword".to_owned()]), "{problem}");
    let mut profile_1 = without_password("EVSE-P0");
    profile_1["securityProfile"] = json!(1);
    let (status, problem) = s.register(&profile_1).await;
    assert_eq!((status, fields(&problem)), (422, vec!["chargerPassword".to_owned()]), "{problem}");
    let mut zero_with_password = terminal("EVSE-P0", 5);
    zero_with_password["securityProfile"] = json!(0);
    assert_eq!(s.register(&zero_with_password).await.0, 422);
    let mut unknown_profile = terminal("EVSE-P0", 5);
    unknown_profile["securityProfile"] = json!(3);
    let (status, problem) = s.register(&unknown_profile).await;
    assert_eq!((status, fields(&problem)), (422, vec!["securityProfile".to_owned()]), "{problem}");
    let mut short = terminal("EVSE-P0", 5);
    short["chargerPassword"] = json!("fifteen-chars!!");
    assert_eq!(s.register(&short).await.0, 422, "the 16-character minimum still holds");
    assert_eq!(s.scalar("SELECT count(*) FROM events").await, 0, "a refused registration appends nothing");

    let mut open = without_password("EVSE-P0");
    open["securityProfile"] = json!(0);
    let (status, body) = s.register(&open).await;
    assert_eq!((status, body["securityProfile"].as_i64(), body["hasPassword"].as_bool()), (201, Some(0), Some(false)));
    let (_, got) = json_of(s.app.get("/v1/terminals/EVSE-P0", &s.token).send().await.unwrap()).await;
    assert_eq!(got["securityProfile"], 0, "{got}");
    let (status, body) = s.register(&terminal("EVSE-P1", 5)).await;
    assert_eq!((status, body["securityProfile"].as_i64(), body["hasPassword"].as_bool()), (201, Some(1), Some(true)));
    let mut tls = terminal("EVSE-P2", 5);
    tls["securityProfile"] = json!(2);
    assert_eq!(s.register(&tls).await.1["securityProfile"], 2);
    let (_, list) = json_of(s.app.get("/v1/terminals", &s.token).send().await.unwrap()).await;
    let profiles: Vec<(String, i64)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["securityProfile"].as_i64().unwrap()))
        .collect();
    assert_eq!(profiles, vec![("EVSE-P0".into(), 0), ("EVSE-P1".into(), 1), ("EVSE-P2".into(), 2)]);

    // Profile 0 connects without credentials; profile 1 only with its password.
    assert_eq!(s.connect("EVSE-P0", "").await, "open");
    assert_eq!(s.connect("EVSE-P1", "").await, 401);
    assert_eq!(s.connect("EVSE-P1", "not-the-password-at-all").await, 401);
    assert_eq!(s.connect("EVSE-P1", PASSWORD).await, "open");
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rotated_password_is_in_force_at_once_and_a_connected_charger_stays(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    assert_eq!(s.register(&terminal("EVSE-ROT", 5)).await.0, 201);
    let mut held = Cp::spawn("infra16", &s.base, "EVSE-ROT", PASSWORD, &["ok"]);
    held.until("READY").await;

    let request = s
        .app
        .put("/v1/terminals/EVSE-ROT/charger-password", &s.token, &json!({"password": NEW_PASSWORD}))
        .header("idempotency-key", "rotate-1");
    let (status, body) = json_of(request.send().await.unwrap()).await;
    assert_eq!((status, body["securityProfile"].as_i64(), body["hasPassword"].as_bool()), (200, Some(1), Some(true)));
    assert!(!body.to_string().contains(NEW_PASSWORD), "the password is never echoed: {body}");
    // The same key again: the stored answer, no second rotation.
    let again = s
        .app
        .put("/v1/terminals/EVSE-ROT/charger-password", &s.token, &json!({"password": NEW_PASSWORD}))
        .header("idempotency-key", "rotate-1");
    let (status, replayed) = json_of(again.send().await.unwrap()).await;
    assert_eq!((status, &replayed), (200, &body));
    let rotations = "SELECT count(*) FROM events WHERE event_type = 'terminal.charger_credentials_set'";
    assert_eq!(s.scalar(rotations).await, 1);

    // The old password is refused by the very next handshake; the new one is accepted later.
    assert_eq!(s.connect("EVSE-ROT", PASSWORD).await, 401);
    // The charger connected before the rotation is still connected and answering.
    let command = json!({"action": "DataTransfer",
        "payload": {"vendorId": "chargeledger.test", "messageId": "status", "data": "1:Available"}});
    let (status, answer) =
        json_of(s.app.post("/v1/terminals/EVSE-ROT/commands", &s.token, &command).send().await.unwrap()).await;
    assert_eq!((status, answer["response"]["status"].as_str()), (200, Some("Accepted")), "{answer}");
    assert_eq!(s.scalar("SELECT count(*) FROM events WHERE event_type = 'charger.disconnected'").await, 0);
    let quit = json!({"action": "DataTransfer",
        "payload": {"vendorId": "chargeledger.test", "messageId": "quit", "data": ""}});
    assert_eq!(
        json_of(s.app.post("/v1/terminals/EVSE-ROT/commands", &s.token, &quit).send().await.unwrap()).await.0,
        200
    );
    held.result().await;
    assert_eq!(s.connect("EVSE-ROT", NEW_PASSWORD).await, "open");

    // Neither password is in the log, the stored answers or the read model in clear.
    for sql in [
        "SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'",
        "SELECT count(*) FROM idempotent_responses WHERE body::text LIKE '%' || $1 || '%'",
        "SELECT count(*) FROM rm_terminals.terminals WHERE password_hash LIKE '%' || $1 || '%'",
    ] {
        for secret in [PASSWORD, NEW_PASSWORD] {
            let n: i64 = sqlx::query_scalar(sql).bind(secret).fetch_one(&s.app.running.state.pool).await.unwrap();
            assert_eq!(n, 0, "{sql}");
        }
    }
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn only_an_operator_of_the_owning_company_rotates(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    assert_eq!(s.register(&terminal("EVSE-OWN", 5)).await.0, 201);
    let body = json!({"password": NEW_PASSWORD});
    let stranger = s.app.token(Uuid::new_v4(), Role::Operator);
    let (status, problem) = s.rotate(&stranger, "EVSE-OWN", &body).await;
    assert_eq!(status, 404, "{problem}");
    for role in [Role::Viewer, Role::Driver] {
        let token = s.app.token(s.company, role);
        let (status, problem) = s.rotate(&token, "EVSE-OWN", &body).await;
        assert_eq!(status, 403, "{role:?}: {problem}");
    }
    assert_eq!(s.rotate(&s.token, "EVSE-NOBODY", &body).await.0, 404);
    let rotations = "SELECT count(*) FROM events WHERE event_type = 'terminal.charger_credentials_set'";
    assert_eq!(s.scalar(rotations).await, 0, "a refused rotation appends nothing");
    assert_eq!(s.connect("EVSE-OWN", PASSWORD).await, "open", "the password is unchanged");
    assert_eq!(s.connect("EVSE-OWN", NEW_PASSWORD).await, 401);
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn dropping_to_profile_0_needs_it_explicitly(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    assert_eq!(s.register(&terminal("EVSE-DROP", 5)).await.0, 201);
    for body in [json!({}), json!({"password": null}), json!({"securityProfile": 1})] {
        let (status, problem) = s.rotate(&s.token, "EVSE-DROP", &body).await;
        assert_eq!((status, fields(&problem)), (422, vec!["password".to_owned()]), "{body}: {problem}");
    }
    let (status, problem) =
        s.rotate(&s.token, "EVSE-DROP", &json!({"password": NEW_PASSWORD, "securityProfile": 0})).await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = s.rotate(&s.token, "EVSE-DROP", &json!({"password": "too-short"})).await;
    assert_eq!((status, fields(&problem)), (422, vec!["password".to_owned()]), "{problem}");
    assert_eq!(s.connect("EVSE-DROP", "").await, 401);

    let (status, body) = s.rotate(&s.token, "EVSE-DROP", &json!({"securityProfile": 0})).await;
    assert_eq!((status, body["securityProfile"].as_i64(), body["hasPassword"].as_bool()), (200, Some(0), Some(false)));
    assert_eq!(s.connect("EVSE-DROP", "").await, "open");
    // A password again: profile 1, and the credentials are required again.
    let (status, body) = s.rotate(&s.token, "EVSE-DROP", &json!({"password": NEW_PASSWORD})).await;
    assert_eq!((status, body["securityProfile"].as_i64()), (200, Some(1)));
    assert_eq!(s.connect("EVSE-DROP", "").await, 401);
    assert_eq!(s.connect("EVSE-DROP", NEW_PASSWORD).await, "open");
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn auto_registration_is_off_by_default(pool: PgPool) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    assert_eq!(gateways::ocpp::OcppConfig::new(addr).auto_register_company, None, "the gateway's default");
    let s = setup(pool, |_| {}).await;
    assert_eq!(s.connect("EVSE-UNKNOWN", "").await, 404);
    assert_eq!(s.connect("EVSE-UNKNOWN", PASSWORD).await, 404);
    assert_eq!(s.scalar("SELECT count(*) FROM events WHERE stream_id LIKE 'terminal-%'").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn auto_registration_fails_closed_while_the_read_model_lags(pool: PgPool) {
    let auto_company = Uuid::new_v4();
    let s = setup(pool, |c| {
        c.ocpp.auto_register_company = Some(auto_company);
        c.consistency_wait = std::time::Duration::from_millis(100);
    })
    .await;
    // Hold the terminals read model still: what the projector would write waits.
    let mut lock = s.app.running.state.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE rm_terminals.terminals IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let (status, body) = s.register(&terminal("EVSE-LAG", 5)).await;
    assert_eq!(status, 202, "the read model lags: {body}");

    // Registered in the log, not in the read model: never auto-registered into
    // another company, never admitted without its password.
    assert_eq!(s.connect("EVSE-LAG", "").await, 401);
    assert_eq!(s.connect("EVSE-LAG", "not-the-password-at-all").await, 401);
    assert_eq!(s.connect("EVSE-LAG", PASSWORD).await, "open");
    let registrations =
        "SELECT count(*) FROM events WHERE event_type = 'terminal.registered' AND stream_id = 'terminal-EVSE-LAG'";
    assert_eq!(s.scalar(registrations).await, 1);
    let company: String = sqlx::query_scalar(
        "SELECT metadata->>'companyId' FROM events WHERE stream_id = 'charger-EVSE-LAG' AND event_type = 'charger.connected'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(company, s.company.to_string());

    // An unknown id, by two connections at once: registered once, to the configured company.
    let (a, b) = tokio::join!(s.connect("EVSE-NEW", ""), s.connect("EVSE-NEW", ""));
    for outcome in [&a, &b] {
        assert!(*outcome == "open" || *outcome == 503, "{outcome}");
    }
    let new =
        "SELECT count(*) FROM events WHERE event_type = 'terminal.registered' AND stream_id = 'terminal-EVSE-NEW'";
    assert_eq!(s.scalar(new).await, 1);
    let owner: String = sqlx::query_scalar(
        "SELECT payload->>'companyId' FROM events WHERE event_type = 'terminal.registered' AND stream_id = 'terminal-EVSE-NEW'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(owner, auto_company.to_string());
    lock.rollback().await.unwrap();
}
