//! Station-to-charge-point mappings: validation, uniqueness per station and per
//! charge point, company scope, lists, deletion, concurrent creations.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn mappings_are_validated_unique_per_station_and_scoped_to_the_company(pool: PgPool) {
    let s = &setup(pool).await;
    let other = s.app.token(Uuid::new_v4(), Role::Operator);
    for (id, station) in [("EVSE-A1", 10), ("EVSE-A2", 10), ("EVSE-A3", 11)] {
        s.register(&s.token, id, station, "1.6").await;
    }
    s.register(&other, "EVSE-B1", 10, "1.6").await;

    // Validation: every field error at once (422); then, with the request
    // valid in itself, another company's terminal is a conflict (409) that
    // names it.
    let bad =
        json!({"stationId": 0, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1", "EVSE-A1", "EVSE-B1", "no such"]});
    let (status, problem) = send(s.app.post(&at("/mappings"), &s.token, &bad)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["stationId", "chargePointIds[3]", "chargePointIds"]);
    assert!(problem["errors"][2]["message"].as_str().unwrap().contains("twice"), "{problem}");
    let foreign = json!({"stationId": 10, "adapterType": "ocpp", "chargePointIds": ["EVSE-A1", "EVSE-B1"]});
    let (status, problem) = send(s.app.post(&at("/mappings"), &s.token, &foreign)).await;
    assert_eq!((status, fields(&problem)), (409, vec!["chargePointIds[1]".to_owned()]), "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("not a terminal of your company"), "{problem}");
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
    // Valid in itself, refused by the mapping's state: a conflict naming the field.
    assert_eq!((status, fields(&problem)), (409, vec!["stationId".to_owned()]));
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
