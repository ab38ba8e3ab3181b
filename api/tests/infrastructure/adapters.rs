//! Adapter settings and write-only adapter credentials.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn adapter_credentials_are_write_only_and_settings_are_validated(pool: PgPool) {
    let s = &setup(pool).await;
    let config = s.get(&at("/config")).await;
    assert_eq!(
        config["adapters"],
        json!([{"adapterType": "ocpp", "timeoutMs": 10000, "retries": 0, "credentials": {}, "configured": false, "updatedAt": null}])
    );

    for (body, field) in [
        (json!({"timeoutMs": 99}), "timeoutMs"),
        (json!({"timeoutMs": 120_001}), "timeoutMs"),
        (json!({"retries": 11}), "retries"),
        (json!({"retries": -1}), "retries"),
        (json!({"timeoutMs": 60_000, "retries": 2}), "timeoutMs"),
        (json!({"credentials": {"bad name": "x"}}), "credentials"),
        (json!({"credentials": {"token": ""}}), "credentials.token"),
    ] {
        let (status, problem) = send(s.patch(&at("/config/ocpp"), &s.token, &body)).await;
        assert_eq!((status, fields(&problem)), (422, vec![field.to_owned()]), "{body}: {problem}");
    }
    assert_eq!(send(s.patch(&at("/config/ocpi"), &s.token, &json!({"retries": 1}))).await.0, 404);
    let viewer = s.app.token(s.company, Role::Viewer);
    assert_eq!(send(s.patch(&at("/config/ocpp"), &viewer, &json!({"retries": 1}))).await.0, 403);
    assert_eq!(s.scalar("SELECT count(*) FROM events WHERE stream_id LIKE 'cpms_config-%'").await, 0);

    const TOKEN: &str = "tok-live-7f3a9c1e5b";
    const PASSWORD_VALUE: &str = "pw-9d8c7b6a5f4e";
    let body = json!({"timeoutMs": 2500, "retries": 2, "credentials": {"apiToken": TOKEN, "user": PASSWORD_VALUE}});
    let response =
        s.patch(&at("/config/ocpp"), &s.token, &body).header("Idempotency-Key", "cfg-1").send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(PASSWORD_VALUE), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((answer["timeoutMs"].as_i64(), answer["retries"].as_i64()), (Some(2500), Some(2)), "{answer}");
    assert_eq!(answer["credentials"], json!({"apiToken": "set", "user": "set"}));
    let replay = s.patch(&at("/config/ocpp"), &s.token, &body).header("Idempotency-Key", "cfg-1").send().await.unwrap();
    assert_eq!(replay.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let reused = json!({"retries": 3});
    assert_eq!(send(s.patch(&at("/config/ocpp"), &s.token, &reused).header("Idempotency-Key", "cfg-1")).await.0, 422);

    let response = s.app.get(&at("/config"), &s.token).send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(PASSWORD_VALUE), "{text}");
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["adapters"][0]["credentials"], json!({"apiToken": "set", "user": "set"}));
    assert_eq!(config["adapters"][0]["configured"], true);

    // Nowhere in the clear: not in the log, the command log, stored responses or read models.
    for table in
        ["events", "command_log", "idempotent_responses", "rm_infrastructure.adapter_configs", "cpms_credentials"]
    {
        let sql = format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%{TOKEN}%' OR t::text LIKE '%{PASSWORD_VALUE}%'"
        );
        assert_eq!(s.scalar(&sql).await, 0, "{table} holds a credential in the clear");
    }
    let named = "SELECT count(*) FROM events WHERE event_type = 'cpms_config.adapter_configured' AND payload->'credentialsSet' ? 'apiToken'";
    assert_eq!(s.scalar(named).await, 1, "the event names the credential");
    // Sealed, and it opens for the platform (with the server secret) only.
    let pool = &s.app.running.state.pool;
    let key = s.app.config.secrets_key.as_ref().unwrap().expose_secret().to_owned();
    let cipher = commands::infrastructure::credentials::CredentialCipher::derive(key.as_bytes()).unwrap();
    let (opened, unreadable) = commands::infrastructure::credentials::load(
        pool,
        &cipher,
        s.company,
        domain::infrastructure::AdapterType::Ocpp,
    )
    .await
    .unwrap();
    assert!(unreadable.is_empty());
    assert_eq!(opened.get("apiToken").map(|v| v.expose_secret().to_owned()), Some(TOKEN.to_owned()));
    let wrong = commands::infrastructure::credentials::CredentialCipher::derive(b"another-secret").unwrap();
    let (opened, unreadable) =
        commands::infrastructure::credentials::load(pool, &wrong, s.company, domain::infrastructure::AdapterType::Ocpp)
            .await
            .unwrap();
    assert_eq!((opened.len(), unreadable.len()), (0, 2));

    // Removing one deletes its sealed value; absent fields keep theirs.
    let (status, answer) = send(s.patch(&at("/config/ocpp"), &s.token, &json!({"credentials": {"user": null}}))).await;
    assert_eq!(
        (status, &answer["credentials"], answer["timeoutMs"].as_i64()),
        (200, &json!({"apiToken": "set"}), Some(2500))
    );
    let rows = format!("SELECT count(*) FROM cpms_credentials WHERE company_id = '{}'", s.company);
    assert_eq!(s.scalar(&rows).await, 1);
    let config = s.get(&at("/config")).await;
    assert_eq!(config["adapters"][0]["credentials"], json!({"apiToken": "set"}));

    // Another company has its own (default) settings.
    let other = s.app.token(Uuid::new_v4(), Role::Admin);
    let (_, theirs) = send(s.app.get(&at("/config"), &other)).await;
    assert_eq!(
        (theirs["adapters"][0]["configured"].as_bool(), theirs["adapters"][0]["timeoutMs"].as_i64()),
        (Some(false), Some(10000))
    );
}
