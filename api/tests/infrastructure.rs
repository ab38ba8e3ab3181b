//! Charging Infrastructure (seed 002) against real charge points: the PyPI
//! `ocpp` package (tests/ocpp/chargepoint.py, scenario `infra16`, and `serve201`)
//! connects to the gateway; mappings, connectivity tests, connector statuses,
//! adapter health and write-only adapter credentials are checked through the API,
//! the log and the database.
#![allow(clippy::unwrap_used)]

mod support;

use std::{future::Future, time::Duration};

use chargeledger_api::auth::Role;
use reqwest::RequestBuilder;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, *};
use uuid::Uuid;

struct Setup {
    app: TestApp,
    token: String,
    company: Uuid,
    base: String,
}

async fn setup(pool: PgPool) -> Setup {
    let app = TestApp::start(pool).await;
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    Setup { app, token, company, base }
}

fn at(path: &str) -> String {
    format!("/v1/charging-infrastructure{path}")
}

async fn send(request: RequestBuilder) -> (u16, Value) {
    json_of(request.send().await.unwrap()).await
}

impl Setup {
    fn patch(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.app.client.patch(self.app.url(path)).bearer_auth(token).json(body)
    }

    fn delete(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.client.delete(self.app.url(path)).bearer_auth(token)
    }

    async fn register(&self, token: &str, id: &str, station: i64, version: &str) {
        let mut body = terminal(id, station);
        body["ocppVersion"] = json!(version);
        let (status, body) = send(self.app.post("/v1/terminals", token, &body)).await;
        assert_eq!(status, 201, "{body}");
    }

    async fn map(&self, station: i64, charge_points: &[&str]) -> Value {
        let body = json!({"stationId": station, "adapterType": "ocpp", "chargePointIds": charge_points});
        let (status, body) = send(self.app.post(&at("/mappings"), &self.token, &body)).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn test(&self, mapping: &Value) -> Value {
        let path = at(&format!("/mappings/{}/test", mapping["id"].as_str().unwrap()));
        let (status, body) = send(self.app.client.post(self.app.url(&path)).bearer_auth(&self.token)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = send(self.app.get(path, &self.token)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sends a DataTransfer the `infra16` charge point acts on (`status` or `quit`).
    async fn tell(&self, charge_point: &str, message_id: &str, data: &str) {
        let body = json!({"action": "DataTransfer",
            "payload": {"vendorId": "chargeledger.test", "messageId": message_id, "data": data}});
        let (status, body) =
            send(self.app.post(&format!("/v1/terminals/{charge_point}/commands"), &self.token, &body)).await;
        assert_eq!((status, body["response"]["status"].as_str()), (200, Some("Accepted")), "{body}");
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.app.running.state.pool).await.unwrap()
    }

    async fn health(&self) -> Value {
        let report = self.get(&at("/adapters/health")).await;
        report["adapters"].as_array().unwrap().iter().find(|a| a["adapterType"] == "ocpp").unwrap().clone()
    }
}

/// Polls `check` until it returns `Some` (10 s at most).
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen in time");
}

/// `station/chargePoint/connector=status` of each listed connector.
async fn statuses(s: &Setup, query: &str) -> Vec<String> {
    let page = s.get(&at(&format!("/connectors{query}"))).await;
    let row = |c: &Value| {
        format!(
            "{}/{}/{}={}",
            c["stationId"],
            c["chargePointId"].as_str().unwrap(),
            c["connectorId"],
            c["status"].as_str().unwrap()
        )
    };
    page["data"].as_array().unwrap().iter().map(row).collect()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn mappings_are_validated_unique_per_station_and_scoped_to_the_company(pool: PgPool) {
    let s = &setup(pool).await;
    let other = s.app.token(Uuid::new_v4(), Role::Operator);
    for (id, station) in [("EVSE-A1", 10), ("EVSE-A2", 10), ("EVSE-A3", 11)] {
        s.register(&s.token, id, station, "1.6").await;
    }
    s.register(&other, "EVSE-B1", 10, "1.6").await;

    // Validation: every field error at once, with another company's terminal refused.
    let bad =
        json!({"stationId": 0, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1", "EVSE-A1", "EVSE-B1", "no such"]});
    let (status, problem) = send(s.app.post(&at("/mappings"), &s.token, &bad)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["stationId", "chargePointIds[1]", "chargePointIds[2]", "chargePointIds[3]"]);
    assert!(problem["errors"][2]["message"].as_str().unwrap().contains("not a terminal of your company"), "{problem}");
    let (status, problem) = send(s.app.post(
        &at("/mappings"),
        &s.token,
        &json!({"stationId": 1, "adapterType": "ocpi", "chargePointIds": ["EVSE-A1"]}),
    ))
    .await;
    assert_eq!((status, fields(&problem)), (422, vec!["adapterType".to_owned()]));
    let (status, _) = send(s.app.post(
        &at("/mappings"),
        &s.token,
        &json!({"stationId": 1, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1"], "x": 1}),
    ))
    .await;
    assert_eq!(status, 422, "unknown fields are refused");
    let viewer = s.app.token(s.company, Role::Viewer);
    let (status, _) = send(s.app.post(
        &at("/mappings"),
        &viewer,
        &json!({"stationId": 1, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1"]}),
    ))
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        s.scalar("SELECT count(*) FROM events WHERE stream_id LIKE 'cpms_%'").await,
        0,
        "refusals append nothing"
    );

    // Create, with an Idempotency-Key: a retry gets the same mapping.
    let body = json!({"stationId": 10, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1", "EVSE-A2"]});
    let first = s.app.post(&at("/mappings"), &s.token, &body).header("Idempotency-Key", "map-10").send().await.unwrap();
    let location = first.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let (status, mapping) = json_of(first).await;
    assert_eq!(status, 201, "{mapping}");
    let id = mapping["id"].as_str().unwrap().to_owned();
    assert_eq!(location, at(&format!("/mappings/{id}")));
    assert_eq!((mapping["stationId"].as_i64(), mapping["adapterType"].as_str()), (Some(10), Some("ocpp")));
    assert_eq!(mapping["chargePointIds"], json!(["EVSE-A1", "EVSE-A2"]));
    assert!(mapping["lastTest"].is_null());
    let again = s.app.post(&at("/mappings"), &s.token, &body).header("Idempotency-Key", "map-10").send().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(json_of(again).await.1["id"], mapping["id"]);

    // One live mapping per station, one mapping per charge point: 409.
    let (status, problem) = send(s.app.post(
        &at("/mappings"),
        &s.token,
        &json!({"stationId": 10, "adapterType": "ocpp", "chargePointIds": ["EVSE-A3"]}),
    ))
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("station 10"), "{problem}");
    let (status, problem) = send(s.app.post(
        &at("/mappings"),
        &s.token,
        &json!({"stationId": 11, "adapterType": "ocpp", "chargePointIds": ["EVSE-A2"]}),
    ))
    .await;
    assert_eq!(status, 409, "{problem}");

    // Read and update.
    assert_eq!(s.get(&at(&format!("/mappings/{id}"))).await["chargePointIds"], json!(["EVSE-A1", "EVSE-A2"]));
    let (status, updated) =
        send(s.patch(&at(&format!("/mappings/{id}")), &s.token, &json!({"chargePointIds": ["EVSE-A1"]}))).await;
    assert_eq!((status, &updated["chargePointIds"]), (200, &json!(["EVSE-A1"])), "{updated}");
    assert!(updated["version"].as_i64().unwrap() > mapping["version"].as_i64().unwrap());
    let (status, problem) = send(s.patch(&at(&format!("/mappings/{id}")), &s.token, &json!({"stationId": 12}))).await;
    assert_eq!((status, fields(&problem)), (422, vec!["stationId".to_owned()]));
    // EVSE-A2 was let go of: another station may take it now.
    let station_11 = s.map(11, &["EVSE-A2"]).await;

    // Another company sees none of it, and may use the same station number for its own.
    let path = at(&format!("/mappings/{id}"));
    assert_eq!(send(s.app.get(&path, &other)).await.0, 404);
    assert_eq!(send(s.patch(&path, &other, &json!({"chargePointIds": ["EVSE-B1"]}))).await.0, 404);
    assert_eq!(send(s.delete(&path, &other)).await.0, 404);
    assert_eq!(send(s.app.client.post(s.app.url(&format!("{path}/test"))).bearer_auth(&other)).await.0, 404);
    let (_, list) = send(s.app.get(&at("/mappings"), &other)).await;
    assert_eq!(list["data"], json!([]));
    let (status, theirs) = send(s.app.post(
        &at("/mappings"),
        &other,
        &json!({"stationId": 10, "adapterType": "ocpp", "chargePointIds": ["EVSE-B1"]}),
    ))
    .await;
    assert_eq!(status, 201, "{theirs}");

    // Lists: newest first, filters, cursor pagination.
    let list = s.get(&at("/mappings")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["id"], station_11["id"]);
    let page = s.get(&at("/mappings?limit=1")).await;
    let cursor = page["nextCursor"].as_str().unwrap();
    let next = s.get(&at(&format!("/mappings?limit=1&cursor={cursor}"))).await;
    assert_eq!((next["data"][0]["id"].as_str(), next["nextCursor"].as_str()), (Some(id.as_str()), None));
    assert_eq!(s.get(&at("/mappings?stationId=10")).await["data"].as_array().unwrap().len(), 1);
    assert_eq!(send(s.app.get(&at("/mappings?adapterType=ocpi"), &s.token)).await.0, 422);

    // Delete: 404 afterwards, the history stays, the station may be mapped again.
    let (status, deleted) = send(s.delete(&path, &s.token)).await;
    assert_eq!((status, deleted["deleted"].as_bool()), (200, Some(true)), "{deleted}");
    assert_eq!(send(s.app.get(&path, &s.token)).await.0, 404);
    assert_eq!(send(s.delete(&path, &s.token)).await.0, 404);
    assert_eq!(send(s.patch(&path, &s.token, &json!({"chargePointIds": ["EVSE-A1"]}))).await.0, 404);
    assert_eq!(s.get(&at("/mappings")).await["data"].as_array().unwrap().len(), 1);
    let history = format!("SELECT count(*) FROM events WHERE stream_id = 'cpms_mapping-{id}'");
    assert_eq!(s.scalar(&history).await, 3, "created, updated, deleted");
    s.map(10, &["EVSE-A1", "EVSE-A3"]).await;
    assert_eq!(send(s.app.get(&at("/mappings/not-a-uuid"), &s.token)).await.0, 404);
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_creations_for_one_station_map_it_once(pool: PgPool) {
    let s = &setup(pool).await;
    let ids: Vec<String> = (0..8).map(|i| format!("EVSE-C{i}")).collect();
    for id in &ids {
        s.register(&s.token, id, 77, "1.6").await;
    }
    let attempts = ids.iter().map(|id| {
        let body = json!({"stationId": 77, "adapterType": "ocpp", "chargePointIds": [id]});
        send(s.app.post(&at("/mappings"), &s.token, &body))
    });
    let mut statuses: Vec<u16> =
        futures::future::join_all(attempts).await.into_iter().map(|(status, _)| status).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(s.scalar("SELECT count(*) FROM events WHERE event_type = 'cpms_mapping.created'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM events WHERE event_type = 'cpms_registry.claimed'").await, 1);
    assert_eq!(s.get(&at("/mappings?stationId=77")).await["data"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_mapping_test_reaches_a_connected_charger_and_fails_clearly_for_a_disconnected_one(pool: PgPool) {
    let s = &setup(pool).await;
    s.register(&s.token, "EVSE-1", 10, "1.6").await;
    s.register(&s.token, "EVSE-2", 20, "1.6").await;
    let mut one = Cp::spawn("infra16", &s.base, "EVSE-1", PASSWORD, &["ok"]);
    let mut two = Cp::spawn("infra16", &s.base, "EVSE-2", PASSWORD, &["ok"]);
    one.until("READY").await;
    two.until("READY").await;
    let first = s.map(10, &["EVSE-1"]).await;
    let second = s.map(20, &["EVSE-2"]).await;

    let health = s.health().await;
    assert_eq!((health["status"].as_str(), health["mappedStations"].as_i64()), (Some("healthy"), Some(2)), "{health}");
    assert_eq!((health["connectedChargePoints"].as_i64(), health["failing"].as_i64()), (Some(2), Some(0)));
    assert!(health["lastSuccessAt"].is_null());

    // A connected charger answers TriggerMessage(Heartbeat), then sends its Heartbeat.
    let report = s.test(&first).await;
    assert_eq!((report["ok"].as_bool(), report["timeoutMs"].as_i64()), (Some(true), Some(10_000)), "{report}");
    let result = &report["chargePoints"][0];
    assert_eq!((result["chargePointId"].as_str(), result["result"].as_str()), (Some("EVSE-1"), Some("ok")), "{report}");
    assert_eq!((result["connected"].as_bool(), result["attempts"].as_i64()), (Some(true), Some(1)));
    assert!(result["latencyMs"].as_i64().is_some_and(|ms| ms >= 0), "{report}");
    assert!(result["error"].is_null());
    let triggered = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' AND payload->>'chargePointId' = 'EVSE-1' \
                     AND payload->>'action' = 'TriggerMessage' AND payload->'payload'->>'requestedMessage' = 'Heartbeat'";
    assert_eq!(s.scalar(triggered).await, 1);
    let answered = "SELECT count(*) FROM events a JOIN events r ON r.stream_id = a.stream_id \
                    WHERE a.event_type = 'ocpp_command.answered' AND r.payload->>'chargePointId' = 'EVSE-1'";
    assert_eq!(s.scalar(answered).await, 1, "the answer came through the command stream");
    let heartbeats =
        "SELECT count(*) FROM events WHERE stream_id = 'ocpp-EVSE-1' AND event_type = 'ocpp.frame_received' \
                      AND payload->>'action' = 'Heartbeat'";
    eventually("the triggered Heartbeat", move || async move { (s.scalar(heartbeats).await == 1).then_some(()) }).await;

    // A charger that went away: not connected, nothing sent, a clear error.
    s.tell("EVSE-2", "quit", "").await;
    assert_eq!(two.result().await["triggers"], 0);
    eventually("EVSE-2 disconnecting", move || async move {
        (s.health().await["connectedChargePoints"] == 1).then_some(())
    })
    .await;
    let report = s.test(&second).await;
    let result = &report["chargePoints"][0];
    assert_eq!((report["ok"].as_bool(), result["result"].as_str()), (Some(false), Some("not_connected")), "{report}");
    assert_eq!((result["connected"].as_bool(), result["attempts"].as_i64()), (Some(false), Some(0)));
    assert!(result["latencyMs"].is_null());
    assert!(result["error"].as_str().unwrap().contains("EVSE-2 is not connected"), "{report}");
    let sent = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' AND payload->>'chargePointId' = 'EVSE-2'";
    assert_eq!(s.scalar(sent).await, 1, "only the quit command, no TriggerMessage");

    // Both outcomes are in the log, and adapter health follows them.
    let tested =
        "SELECT string_agg(payload->>'ok', ',' ORDER BY position) FROM events WHERE event_type = 'cpms_mapping.tested'";
    let outcomes: String = sqlx::query_scalar(tested).fetch_one(&s.app.running.state.pool).await.unwrap();
    assert_eq!(outcomes, "true,false");
    let health = s.health().await;
    assert_eq!((health["status"].as_str(), health["failing"].as_i64()), (Some("degraded"), Some(1)), "{health}");
    assert_eq!(health["failingChargePoints"], json!(["EVSE-2"]));
    assert_eq!((health["mappedChargePoints"].as_i64(), health["connectedChargePoints"].as_i64()), (Some(2), Some(1)));
    assert!(health["lastError"].as_str().unwrap().contains("EVSE-2: not_connected"), "{health}");
    assert!(health["lastSuccessAt"].is_string() && health["lastErrorAt"].is_string(), "{health}");
    let mapping = s.get(&at(&format!("/mappings/{}", second["id"].as_str().unwrap()))).await;
    assert_eq!(mapping["lastTest"]["ok"], false, "{mapping}");
    assert!(mapping["lastTest"]["lastSuccessAt"].is_null());

    // A company without mappings: an idle adapter.
    let other = s.app.token(Uuid::new_v4(), Role::Viewer);
    let (_, theirs) = send(s.app.get(&at("/adapters/health"), &other)).await;
    assert_eq!(
        (theirs["adapters"][0]["status"].as_str(), theirs["adapters"][0]["mappedStations"].as_i64()),
        (Some("idle"), Some(0))
    );
    s.tell("EVSE-1", "quit", "").await;
    assert_eq!(one.result().await["heartbeats"], 1);

    // The read model is the log's: a rebuild gives the same rows.
    let rows = || async {
        let sql = "SELECT row_to_json(m)::text FROM rm_infrastructure.mappings m \
                   UNION ALL SELECT row_to_json(p)::text FROM rm_infrastructure.charge_points p ORDER BY 1";
        sqlx::query_scalar::<_, String>(sql).fetch_all(&s.app.running.state.pool).await.unwrap()
    };
    let before = rows().await;
    assert_eq!(before.len(), 4, "two mappings, two charge points");
    let store = &s.app.running.state.store;
    projections::runtime::rebuild(store, &projections::infrastructure::InfrastructureProjector, |_, _| {})
        .await
        .unwrap();
    assert_eq!(rows().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_test_uses_the_configured_timeout_and_retries_and_reports_refusals_and_201_chargers(pool: PgPool) {
    let s = &setup(pool).await;
    s.register(&s.token, "EVSE-SILENT", 30, "1.6").await;
    s.register(&s.token, "EVSE-NO", 30, "1.6").await;
    s.register(&s.token, "EVSE-201", 50, "2.0.1").await;
    let mut silent = Cp::spawn("infra16", &s.base, "EVSE-SILENT", PASSWORD, &["silent"]);
    let mut refusing = Cp::spawn("infra16", &s.base, "EVSE-NO", PASSWORD, &["reject"]);
    let mut v201 = Cp::spawn("serve201", &s.base, "EVSE-201", PASSWORD, &["1"]);
    for cp in [&mut silent, &mut refusing, &mut v201] {
        cp.until("READY").await;
    }
    let (status, config) =
        send(s.patch(&at("/config/ocpp"), &s.token, &json!({"timeoutMs": 1500, "retries": 1}))).await;
    assert_eq!(
        (status, config["timeoutMs"].as_i64(), config["retries"].as_i64()),
        (200, Some(1500), Some(1)),
        "{config}"
    );

    let mapping = s.map(30, &["EVSE-SILENT", "EVSE-NO"]).await;
    let report = s.test(&mapping).await;
    assert_eq!(
        (report["ok"].as_bool(), report["timeoutMs"].as_i64(), report["retries"].as_i64()),
        (Some(false), Some(1500), Some(1))
    );
    let (timed_out, refused) = (&report["chargePoints"][0], &report["chargePoints"][1]);
    assert_eq!((timed_out["result"].as_str(), timed_out["attempts"].as_i64()), (Some("timeout"), Some(2)), "{report}");
    assert!(timed_out["error"].as_str().unwrap().contains("within 1500 ms"), "{report}");
    assert_eq!((refused["result"].as_str(), refused["attempts"].as_i64()), (Some("rejected"), Some(1)), "{report}");
    assert!(refused["error"].as_str().unwrap().contains("Rejected"), "{report}");
    // Each request carried the configured timeout, and the gateway gave up on each.
    let requests = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' \
                    AND payload->>'chargePointId' = 'EVSE-SILENT' AND (payload->>'timeoutMs')::bigint = 1500";
    assert_eq!(s.scalar(requests).await, 2);
    let timeouts = "SELECT count(*) FROM events f JOIN events r ON r.stream_id = f.stream_id AND r.event_type = 'ocpp_command.requested' \
                    WHERE f.event_type = 'ocpp_command.failed' AND f.payload->>'reason' = 'timeout' AND r.payload->>'chargePointId' = 'EVSE-SILENT'";
    assert_eq!(s.scalar(timeouts).await, 2);

    // OCPP 2.0.1: the same TriggerMessage, answered.
    let mapping = s.map(50, &["EVSE-201"]).await;
    let report = s.test(&mapping).await;
    assert_eq!(
        (report["ok"].as_bool(), report["chargePoints"][0]["result"].as_str()),
        (Some(true), Some("ok")),
        "{report}"
    );
    assert_eq!(v201.result().await["received"], json!(["TriggerMessage"]));
    s.tell("EVSE-NO", "quit", "").await;
    assert_eq!(refusing.result().await["heartbeats"], 0, "a refused trigger sends nothing");
    silent.child.kill().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn connector_statuses_and_summary_follow_status_notifications(pool: PgPool) {
    let s = &setup(pool).await;
    s.register(&s.token, "EVSE-S1", 10, "1.6").await;
    s.register(&s.token, "EVSE-S2", 20, "1.6").await;
    let mut one = Cp::spawn("infra16", &s.base, "EVSE-S1", PASSWORD, &["ok"]);
    let mut two = Cp::spawn("infra16", &s.base, "EVSE-S2", PASSWORD, &["ok"]);
    one.until("READY").await;
    two.until("READY").await;
    s.map(10, &["EVSE-S1"]).await;
    let station_20 = s.map(20, &["EVSE-S2"]).await;

    let all_available =
        ["10/EVSE-S1/1=Available", "10/EVSE-S1/2=Available", "20/EVSE-S2/1=Available", "20/EVSE-S2/2=Available"];
    eventually("the boot statuses", move || async move { (statuses(s, "").await == all_available).then_some(()) })
        .await;
    let page = s.get(&at("/connectors")).await;
    let first = &page["data"][0];
    assert_eq!((first["connectorType"].as_str(), first["maxPowerW"].as_i64()), (Some("Type2"), Some(22000)), "{page}");
    assert_eq!((first["connected"].as_bool(), first["adapterType"].as_str()), (Some(true), Some("ocpp")));
    let summary = s.get(&at("/connectors/summary")).await;
    assert_eq!((summary["total"].as_i64(), &summary["byStatus"]), (Some(4), &json!({"Available": 4})), "{summary}");
    assert_eq!(summary["stations"].as_array().unwrap().len(), 2);

    // Available → Charging → Faulted, as the charger reports it.
    s.tell("EVSE-S1", "status", "1:Charging").await;
    eventually("Charging", move || async move {
        (statuses(s, "?status=Charging").await == ["10/EVSE-S1/1=Charging"]).then_some(())
    })
    .await;
    let summary = s.get(&at("/connectors/summary")).await;
    assert_eq!(summary["byStatus"], json!({"Available": 3, "Charging": 1}), "{summary}");
    s.tell("EVSE-S1", "status", "1:Faulted:GroundFailure").await;
    eventually("Faulted", move || async move {
        (statuses(s, "?status=Faulted").await == ["10/EVSE-S1/1=Faulted"]).then_some(())
    })
    .await;
    assert!(statuses(s, "?status=Charging").await.is_empty());
    let faulted = s.get(&at("/connectors?status=Faulted")).await;
    assert_eq!(faulted["data"][0]["errorCode"], "GroundFailure");
    let summary = s.get(&at("/connectors/summary")).await;
    assert_eq!(summary["byStatus"], json!({"Available": 3, "Faulted": 1}), "{summary}");
    assert_eq!(
        summary["stations"][0],
        json!({"stationId": 10, "total": 2, "offline": 0, "byStatus": {"Available": 1, "Faulted": 1}})
    );
    s.tell("EVSE-S1", "status", "1:Available").await;
    eventually("Available again", move || async move { statuses(s, "?status=Faulted").await.is_empty().then_some(()) })
        .await;

    // Filters and pagination.
    assert_eq!(statuses(s, "?stationId=20").await, ["20/EVSE-S2/1=Available", "20/EVSE-S2/2=Available"]);
    let page = s.get(&at("/connectors?limit=3")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = s.get(&at(&format!("/connectors?limit=3&cursor={cursor}"))).await;
    assert_eq!(
        (rest["data"][0]["chargePointId"].as_str(), rest["data"][0]["connectorId"].as_i64()),
        (Some("EVSE-S2"), Some(2))
    );
    assert!(rest["nextCursor"].is_null(), "{rest}");
    assert_eq!(send(s.app.get(&at("/connectors?status=Sleeping"), &s.token)).await.0, 422);
    assert_eq!(send(s.app.get(&at("/connectors?cursor=bogus"), &s.token)).await.0, 422);

    // Another company sees nothing.
    let other = s.app.token(Uuid::new_v4(), Role::Operator);
    assert_eq!(send(s.app.get(&at("/connectors"), &other)).await.1["data"], json!([]));
    assert_eq!(send(s.app.get(&at("/connectors/summary"), &other)).await.1["total"], 0);

    // Only mapped charge points count; a charger that went away shows offline.
    let (status, _) = send(s.delete(&at(&format!("/mappings/{}", station_20["id"].as_str().unwrap())), &s.token)).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(s, "").await, ["10/EVSE-S1/1=Available", "10/EVSE-S1/2=Available"]);
    s.tell("EVSE-S1", "quit", "").await;
    assert_eq!(one.result().await["statuses"], json!(["1:Charging", "1:Faulted:GroundFailure", "1:Available"]));
    let summary = eventually("EVSE-S1 offline", move || async move {
        let summary = s.get(&at("/connectors/summary")).await;
        (summary["offline"] == 2).then_some(summary)
    })
    .await;
    assert_eq!((summary["total"].as_i64(), summary["stations"].as_array().unwrap().len()), (Some(2), 1));
    s.tell("EVSE-S2", "quit", "").await;
    two.result().await;
}

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
