//! A REST write in flight when `serve` is killed with SIGKILL, retried with
//! the same `Idempotency-Key` against the restarted process (issue 21): the
//! retry executes (the dead process's claim is released, not honoured as a
//! lease that outlives it), its outcome is stored, and the next retry replays
//! it. The write is a charger command: the API holds the request open until
//! the charger answers, so the kill lands while the claim is held.

use super::*;

const ID: &str = "CRASH-RETRY";
const KEY: &str = "clear-cache-after-a-crash";

/// A charger that boots, then reports the action of each CALL the CSMS sends
/// on `calls`, and answers `Accepted` only if `answer`.
async fn charger(base: &str, answer: bool, calls: tokio::sync::mpsc::UnboundedSender<String>) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ID}:{}", support::charger::PASSWORD));
    let mut request = format!("{base}/{ID}").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
    request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Basic {auth}")).unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let boot = json!([2, "boot", "BootNotification", {"chargePointVendor": "crash", "chargePointModel": "retry"}]);
    let booted = call(&mut ws, "boot", &boot.to_string()).await.unwrap();
    assert_eq!(booted[0], 3, "{booted}");
    tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
            if frame[0] != 2 {
                continue;
            }
            let _ = calls.send(frame[2].as_str().unwrap_or_default().to_owned());
            if answer {
                let reply = json!([3, frame[1], {"status": "Accepted"}]);
                if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    });
}

async fn clear_cache(client: &reqwest::Client, http: u16, token: &str) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("http://127.0.0.1:{http}/v1/terminals/{ID}/commands"))
        .bearer_auth(token)
        .header("Idempotency-Key", KEY)
        .json(&json!({"action": "ClearCache", "payload": {}, "timeoutMs": 60_000}))
        .send()
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_in_flight_at_kill_9_is_executed_on_retry_then_replayed(pool: PgPool) {
    let db_url = test_config(&pool).database_url;
    let (http, ocpp) = (free_port(), free_port());
    let client = reqwest::Client::new();
    let mut server = Server::spawn(&db_url, http, ocpp);
    wait_ready(&client, http).await;
    let mut config = test_config(&pool);
    config.jwt_secret = SecretString::from(SECRET);
    let token = auth::mint_token(&config, "retry-operator", Uuid::new_v4(), Role::Operator, chrono::Duration::hours(1))
        .unwrap();
    let registered = client
        .post(format!("http://127.0.0.1:{http}/v1/terminals"))
        .bearer_auth(&token)
        .json(&terminal(ID, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    // The command route reads the terminal from its read model: wait for it,
    // so no early 404 is what the key stores.
    for _ in 0..100 {
        let get = client.get(format!("http://127.0.0.1:{http}/v1/terminals/{ID}")).bearer_auth(&token).send().await;
        if get.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = format!("ws://127.0.0.1:{ocpp}/ocpp");

    // A charger that never answers: the request waits for it, holding its key.
    let (calls, mut received) = tokio::sync::mpsc::unbounded_channel();
    charger(&base, false, calls).await;
    let in_flight = tokio::spawn({
        let (client, token) = (client.clone(), token.clone());
        async move { clear_cache(&client, http, &token).await }
    });
    let sent = tokio::time::timeout(Duration::from_secs(30), received.recv()).await.unwrap();
    assert_eq!(sent.as_deref(), Some("ClearCache"), "the command reached the charger");
    let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotent_responses WHERE key = $1")
        .bind(KEY)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(claimed, 1, "the key is claimed while the request runs");

    server.kill_9();
    assert!(in_flight.await.unwrap().is_err(), "the client saw the connection drop, not an answer");

    // The restarted process, and the charger back, answering this time.
    let mut server = Server::spawn(&db_url, http, ocpp);
    wait_ready(&client, http).await;
    let (calls, mut received) = tokio::sync::mpsc::unbounded_channel();
    let mut connected = false;
    for _ in 0..100 {
        // The gateway may still be recording the old connection's end.
        let attempt = tokio::spawn({
            let (base, calls) = (base.clone(), calls.clone());
            async move { charger(&base, true, calls).await }
        });
        if attempt.await.is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected, "the charger reconnected");

    let retried = clear_cache(&client, http, &token).await.unwrap();
    let replayed = retried.headers().get("idempotent-replayed").is_some();
    let (status, body) = (retried.status().as_u16(), retried.json::<Value>().await.unwrap());
    assert_eq!((status, replayed), (200, false), "executed afresh, not a 409 for a dead lease: {body}");
    assert_eq!((body["status"].as_str(), &body["response"]), (Some("answered"), &json!({"status": "Accepted"})));
    let sent = tokio::time::timeout(Duration::from_secs(30), received.recv()).await.unwrap();
    assert_eq!(sent.as_deref(), Some("ClearCache"));

    // Its outcome is stored: the next retry is a replay of the same answer.
    let again = clear_cache(&client, http, &token).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(again.json::<Value>().await.unwrap(), body);

    server.kill_9();
    assert_log_verifies(&commands::EventStore::new(pool.clone())).await;
}
