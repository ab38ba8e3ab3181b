//! Frames holding NUL (U+0000), which Postgres text and jsonb cannot store
//! (issue 21 item 3, issue 11 finding 8): every one the gateway answers or acts
//! on is in the log (escaped where it must be) with its rejection, a charger's
//! malformed answer fails the REST command with 502, the connection survives
//! and the log still verifies. The `ocpp` package never sends NUL, so the test
//! is the charger here, over a raw WebSocket.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use base64::Engine;
use chargeledger_api::auth::Role;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::PASSWORD, *};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};
use uuid::Uuid;

/// How the test charger answers a command, given the CALL's message id.
type Answer = Box<dyn Fn(&str) -> String>;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Setup {
    app: TestApp,
    token: String,
    base: String,
}

async fn setup(pool: PgPool, id: &str) -> Setup {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    let (status, body) = json_of(app.post("/v1/terminals", &token, &terminal(id, 3)).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    Setup { app, token, base }
}

async fn connect(s: &Setup, id: &str) -> Ws {
    let mut request = format!("{}/{id}", s.base).into_client_request().unwrap();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{PASSWORD}"));
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
    headers.insert("Authorization", HeaderValue::from_str(&format!("Basic {credentials}")).unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The next text frame from the gateway, as JSON.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.unwrap().unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn exchange(ws: &mut Ws, text: &str) -> Value {
    ws.send(Message::Text(text.to_owned().into())).await.unwrap();
    next(ws).await
}

async fn frames(s: &Setup, stream: &str, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT payload FROM events WHERE stream_id = $1 AND event_type = $2 ORDER BY position")
        .bind(stream)
        .bind(event_type)
        .fetch_all(&s.app.running.state.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_nul_variant_of_a_call_is_answered_and_in_the_log(pool: PgPool) {
    let s = setup(pool, "EVSE-NUL").await;
    let mut ws = connect(&s, "EVSE-NUL").await;
    // (frame as sent, the id it is answered with, the 1.6 error code)
    let cases: Vec<(String, &str, &str)> = vec![
        (r#"[2,"n\u0000id","Heartbeat",{}]"#.into(), "n\u{0}id", "ProtocolError"),
        (r#"[2,"n2","Heart\u0000beat",{}]"#.into(), "n2", "ProtocolError"),
        (r#"[2,"n3","Authorize",{"idTag":"A\u0000B"}]"#.into(), "n3", "PropertyConstraintViolation"),
        ("[2,\"n4\",\"Heart\0beat\",{}]".into(), "n4", "FormationViolation"),
        ("[2,\"n5\",\"Heartbeat\",{}]\0".into(), "n5", "FormationViolation"),
        ("\0\0".into(), "-1", "FormationViolation"),
    ];
    let mut answers = vec![];
    for (text, id, code) in &cases {
        let answer = exchange(&mut ws, text).await;
        assert_eq!((answer[0].as_i64(), answer[1].as_str(), answer[2].as_str()), (Some(4), Some(*id), Some(*code)));
        answers.push(answer);
    }
    let alive = exchange(&mut ws, r#"[2,"n9","Heartbeat",{}]"#).await;
    assert_eq!((alive[0].as_i64(), alive[1].as_str()), (Some(3), Some("n9")), "the connection survives");
    assert!(alive[2]["currentTime"].is_string());

    // Every frame is in the log: received with its rejection, and our answer.
    let received = frames(&s, "ocpp-EVSE-NUL", "ocpp.frame_received").await;
    let sent = frames(&s, "ocpp-EVSE-NUL", "ocpp.frame_sent").await;
    assert_eq!((received.len(), sent.len()), (cases.len() + 1, cases.len() + 1));
    for (i, (text, _, code)) in cases.iter().enumerate() {
        let frame = &received[i];
        assert_eq!(frame["rejection"]["code"], *code, "{frame}");
        let raw = frame["raw"].as_str().unwrap();
        if text.contains('\0') {
            // Stored as its JSON string literal, and flagged so.
            assert_eq!(serde_json::from_str::<String>(raw).unwrap(), *text);
            assert!(frame["rejection"]["description"].as_str().unwrap().contains("JSON-escaped"), "{frame}");
        } else {
            assert_eq!(raw, text, "stored exactly as received");
        }
        let answer: Value = serde_json::from_str(sent[i]["raw"].as_str().unwrap()).unwrap();
        assert_eq!(answer, answers[i], "the answer sent is the one recorded");
    }
    assert_eq!(received[0]["messageId"], json!(r#""n\u0000id""#), "the id, escaped");
    assert_eq!(received[1]["action"], json!(r#""Heart\u0000beat""#), "the action, escaped");
    assert_eq!(received[3]["messageId"], "n4");
    assert_eq!(received[cases.len()]["rejection"], Value::Null);
    // Nothing of a refused call reached the charger's stream.
    let effects: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-NUL' AND event_type NOT LIKE 'charger.%connected'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(effects, 0);
    drop(ws);
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_charger_answer_with_nul_fails_the_command_with_502_and_is_recorded(pool: PgPool) {
    let s = setup(pool, "EVSE-ANS").await;
    let mut ws = connect(&s, "EVSE-ANS").await;
    let answers: Vec<(&str, Answer)> = vec![
        ("nul in a CALLRESULT", Box::new(|id| format!(r#"[3,"{id}",{{"status":"Accepted","data":"x\u0000y"}}]"#))),
        ("nul in a CALLERROR", Box::new(|id| format!(r#"[4,"{id}","GenericError","bad\u0000thing",{{}}]"#))),
        ("raw nul in a CALLRESULT", Box::new(|id| format!("[3,\"{id}\",{{\"status\":\"Acc\0epted\"}}]"))),
        ("a good answer", Box::new(|id| format!(r#"[3,"{id}",{{"status":"Accepted"}}]"#))),
    ];
    let command = json!({"action": "DataTransfer", "payload": {"vendorId": "com.example", "data": "ping"}});
    let mut sent_texts = vec![];
    for (what, answer) in &answers {
        let request = s.app.post("/v1/terminals/EVSE-ANS/commands", &s.token, &command).send();
        let pending = tokio::spawn(request);
        let call = next(&mut ws).await;
        assert_eq!((call[0].as_i64(), call[2].as_str()), (Some(2), Some("DataTransfer")), "{call}");
        let text = answer(call[1].as_str().unwrap());
        ws.send(Message::Text(text.clone().into())).await.unwrap();
        sent_texts.push(text);
        let (status, body) = json_of(pending.await.unwrap().unwrap()).await;
        if *what == "a good answer" {
            assert_eq!((status, body["response"]["status"].as_str()), (200, Some("Accepted")), "{body}");
        } else {
            assert_eq!(status, 502, "{what}: {body}");
            assert!(body["detail"].as_str().unwrap().contains("malformed"), "{what}: {body}");
        }
    }

    let received = frames(&s, "ocpp-EVSE-ANS", "ocpp.frame_received").await;
    assert_eq!(received.len(), answers.len());
    for (i, text) in sent_texts.iter().enumerate() {
        let raw = received[i]["raw"].as_str().unwrap();
        let stored = if text.contains('\0') { serde_json::from_str::<String>(raw).unwrap() } else { raw.to_owned() };
        assert_eq!(&stored, text);
        assert_eq!(received[i]["action"], "DataTransfer", "the answer is tied to its command");
        assert_eq!(received[i]["rejection"].is_null(), i == answers.len() - 1, "{}", received[i]);
    }
    let failed: Vec<Value> =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'ocpp_command.failed' ORDER BY position")
            .fetch_all(&s.app.running.state.pool)
            .await
            .unwrap();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|f| f["reason"] == "invalid_response"), "{failed:?}");
    let answered: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ocpp_command.answered'")
        .fetch_one(&s.app.running.state.pool)
        .await
        .unwrap();
    assert_eq!(answered, 1);
    let alive = exchange(&mut ws, r#"[2,"h1","Heartbeat",{}]"#).await;
    assert_eq!((alive[0].as_i64(), alive[1].as_str()), (Some(3), Some("h1")), "the connection survives");
    drop(ws);
    assert_log_verifies(&s.app.running.state.store).await;
}
