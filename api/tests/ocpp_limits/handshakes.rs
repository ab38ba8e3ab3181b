//! Failed handshakes: 429 per charger id and per source address, and a wrong
//! password never keeps out or replaces the real charger.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn wrong_passwords_beyond_the_limit_get_429_for_that_charger_id(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 3;
        c.ocpp.limits.failures_per_address = 0;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-1")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-2")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-3")).await, 401);
    let (code, retry_after) = connect(s.ocpp, "EVSE-A", Some("wrong-4")).await.err().unwrap();
    assert_eq!(code, 429);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 429, "not even checked while the id is blocked");
    // Another charger from the same address is not affected.
    assert_eq!(status(s.ocpp, "EVSE-B", Some("wrong")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 101);
    let connections =
        "SELECT count(*) FROM events WHERE event_type = 'charger.connected' AND stream_id = 'charger-EVSE-B'";
    assert_eq!(settled(&s, connections, 1).await, 1);
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'charger.connected'").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn someone_hammering_a_chargers_id_cannot_keep_the_real_charger_out(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 3;
        c.ocpp.limits.failures_per_address = 0;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    // The real charger connects (its verification is remembered), then drops.
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 101);
    // Someone without its password: missing headers do not count against the id …
    for _ in 0..5 {
        assert_eq!(status(s.ocpp, "EVSE-B", None).await, 401);
    }
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 101, "missing headers never lock an id out");
    // … wrong passwords do, and the attacker is refused with 429 …
    for n in 1..=3 {
        assert_eq!(status(s.ocpp, "EVSE-A", Some(&format!("wrong-{n}"))).await, 401);
    }
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong-4")).await, 429);
    assert_eq!(status(s.ocpp, "EVSE-A", None).await, 429);
    // … while the real charger, recently verified, still gets in.
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 101);
    let connections =
        "SELECT count(*) FROM events WHERE event_type = 'charger.connected' AND stream_id = 'charger-EVSE-A'";
    assert_eq!(settled(&s, connections, 2).await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_handshakes_beyond_the_limit_get_429_for_that_source_address(pool: PgPool) {
    let s = setup(pool, |c| {
        c.ocpp.limits.failures_per_id = 0;
        c.ocpp.limits.failures_per_address = 3;
    })
    .await;
    register(&s, "EVSE-A").await;
    register(&s, "EVSE-B").await;
    assert_eq!(status(s.ocpp, "EVSE-A", Some("wrong")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-NOBODY", Some("x")).await, 404, "scanning for ids counts too");
    assert_eq!(status(s.ocpp, "EVSE-A", None).await, 401);
    // 127.0.0.1 is now blocked, whatever the charger and the password.
    assert_eq!(status(s.ocpp, "EVSE-B", Some(PASSWORD)).await, 429);
    assert_eq!(status(s.ocpp, "EVSE-A", Some(PASSWORD)).await, 429);
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'charger.connected'").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wrong_password_never_replaces_the_live_connection(pool: PgPool) {
    let s = setup(pool, |c| c.ocpp.limits.failures_per_id = 2).await;
    register(&s, "EVSE-LIVE").await;
    let mut live = connect(s.ocpp, "EVSE-LIVE", Some(PASSWORD)).await.unwrap();
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("an-impostor")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", None).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("another-impostor")).await, 401);
    assert_eq!(status(s.ocpp, "EVSE-LIVE", Some("an-impostor")).await, 429);
    let answer = heartbeat(&mut live, "hb-live").await;
    assert_eq!((answer[0].as_i64(), answer[1].as_str()), (Some(3), Some("hb-live")), "{answer}");
    assert!(answer[2]["currentTime"].is_string());
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = 'charger-EVSE-LIVE' AND event_type LIKE 'charger.%connected'",
    )
    .fetch_all(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["charger.connected"], "never disconnected, never replaced");
}
