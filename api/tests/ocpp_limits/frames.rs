//! Frame floods: refused with CALLERRORs, closed, and summarized in the log.

use super::*;

/// Events on a charger's frame stream: (refused frames recorded one by one, summaries, summarized count, all).
async fn frame_log(s: &Setup, id: &str) -> (i64, i64, i64, i64) {
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE event_type = 'ocpp.frame_received' AND payload->'rejection' <> 'null'::jsonb), \
                count(*) FILTER (WHERE event_type = 'ocpp.frame_rejections_summarized'), \
                coalesce(sum((payload->>'count')::bigint) FILTER (WHERE event_type = 'ocpp.frame_rejections_summarized'), 0)::bigint, \
                count(*) \
         FROM events WHERE stream_id = $1",
    )
    .bind(format!("ocpp-{id}"))
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    row
}

#[sqlx::test(migrations = "../migrations")]
async fn a_frame_flood_gets_callerrors_is_closed_and_stays_small_in_the_log(pool: PgPool) {
    let s = setup(pool, |c| {
        let l = &mut c.ocpp.limits;
        (l.frames_per_sec, l.frame_burst, l.flood_close_after, l.rejections_logged) = (1, 5, 50, 5);
        l.rejection_interval = Duration::from_secs(3600);
    })
    .await;
    register(&s, "EVSE-FLOOD").await;
    let mut ws = connect(s.ocpp, "EVSE-FLOOD", Some(PASSWORD)).await.unwrap();
    // One at a time: the burst is answered, then the rate limit answers CALLERROR.
    let mut limited = None;
    for n in 0..20 {
        let answer = heartbeat(&mut ws, &format!("hb-{n}")).await;
        if answer[0] == 4 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a CALLERROR once the burst is spent");
    assert_eq!(limited[2], "GenericError", "{limited}");
    assert!(limited[3].as_str().unwrap().contains("rate limit"), "{limited}");
    // Then 1,000 junk frames without waiting: refused, and the connection closed.
    for n in 0..1000 {
        if ws.send(Message::Text(format!("junk {n} not a frame").into())).await.is_err() {
            break;
        }
    }
    let mut answers = 0;
    while let Some(frame) = next_text(&mut ws).await {
        assert_eq!(frame[0], 4, "{frame}");
        answers += 1;
    }
    assert!(answers < 1000, "closed before the flood was answered");
    let disconnected =
        "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-FLOOD' AND event_type = 'charger.disconnected'";
    assert_eq!(settled(&s, disconnected, 1).await, 1);
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE stream_id = 'charger-EVSE-FLOOD' AND event_type = 'charger.disconnected'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(reason.starts_with("frame flood"), "{reason}");
    let (one_by_one, summaries, summarized, all) = frame_log(&s, "EVSE-FLOOD").await;
    assert_eq!(one_by_one, 5, "the first five refusals of the interval are recorded one by one");
    assert_eq!(summaries, 1, "the rest in one summary, recorded when the connection closed");
    assert!(summarized >= 45, "the summary counts the refused frames: {summarized}");
    assert!(all <= 40, "a few dozen events at most, not thousands: {all}");
    let over_rate: i64 = sqlx::query_scalar(
        "SELECT (payload->>'overRate')::bigint FROM events WHERE event_type = 'ocpp.frame_rejections_summarized'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(over_rate >= 45, "{over_rate}");
}

#[sqlx::test(migrations = "../migrations")]
async fn rejected_frames_beyond_a_rate_are_summarized_without_a_rate_limit(pool: PgPool) {
    let s = setup(pool, |c| {
        (c.ocpp.limits.frames_per_sec, c.ocpp.limits.rejections_logged) = (0, 5);
    })
    .await;
    register(&s, "EVSE-JUNK").await;
    let mut ws = connect(s.ocpp, "EVSE-JUNK", Some(PASSWORD)).await.unwrap();
    for n in 0..1000 {
        ws.send(Message::Text(format!("[2,\"j{n}\",\"Heartbeat\",{{\"junk\":1}}]").into())).await.unwrap();
    }
    for _ in 0..1000 {
        let answer = next_text(&mut ws).await.expect("every junk frame is answered");
        assert_eq!((answer[0].as_i64(), answer[2].as_str()), (Some(4), Some("FormationViolation")), "{answer}");
    }
    assert_eq!(heartbeat(&mut ws, "after").await[0], 3, "the connection survives without a rate limit");
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let mut log = (0, 0, 0, 0);
    for _ in 0..500 {
        log = frame_log(&s, "EVSE-JUNK").await;
        if log.1 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (one_by_one, summaries, summarized, all) = log;
    assert_eq!((one_by_one, summaries, summarized), (5, 1, 995), "{log:?}");
    assert_eq!(all, 5 * 2 + 1 + 2, "five refusals with their CALLERRORs, the summary, the heartbeat and its answer");
    let codes: Value = sqlx::query_scalar(
        "SELECT payload->'byCode' FROM events WHERE event_type = 'ocpp.frame_rejections_summarized'",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(codes, json!({"FormationViolation": 995}));
}

#[sqlx::test(migrations = "../migrations")]
async fn reconnecting_does_not_reset_what_the_log_records_of_rejected_frames(pool: PgPool) {
    let s = setup(pool, |c| {
        (c.ocpp.limits.frames_per_sec, c.ocpp.limits.rejections_logged) = (0, 5);
        c.ocpp.limits.rejection_interval = Duration::from_secs(3600);
    })
    .await;
    register(&s, "EVSE-LOOP").await;
    // Connect, 20 junk frames, disconnect: ten times in one interval.
    for round in 0..10i64 {
        let mut ws = connect(s.ocpp, "EVSE-LOOP", Some(PASSWORD)).await.unwrap();
        for n in 0..20 {
            ws.send(Message::Text(format!("[2,\"r{round}-{n}\",\"Heartbeat\",{{\"junk\":1}}]").into())).await.unwrap();
        }
        for _ in 0..20 {
            assert_eq!(next_text(&mut ws).await.expect("answered")[0], 4);
        }
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
        let disconnected =
            "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-LOOP' AND event_type = 'charger.disconnected'";
        assert_eq!(settled(&s, disconnected, round + 1).await, round + 1);
    }
    let (one_by_one, summaries, summarized, _) = frame_log(&s, "EVSE-LOOP").await;
    assert_eq!(one_by_one, 5, "five refusals recorded one by one in the interval, across all ten connections");
    assert_eq!(summarized, 195, "the other 195 are counted in summaries");
    assert!(summaries <= 10, "at most one summary per connection: {summaries}");
}
