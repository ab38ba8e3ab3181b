//! Connector statuses and their summary, following StatusNotifications.

use super::*;

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
