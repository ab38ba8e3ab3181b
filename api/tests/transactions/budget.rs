//! The budget stop belongs to its charger: when one session's running cost
//! reaches its pre-authorized amount, the platform stops that charger (and
//! captures exactly the authorized amount) while the other chargers charging
//! under the same transaction id 1, in its company and in another, keep
//! charging until they are stopped and capture exactly their own cost.

use super::*;

impl World {
    /// The `RemoteStopTransaction` requests appended for `c`'s charger, as
    /// their payloads' transaction ids.
    async fn remote_stops(&self, c: &Charger) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT (payload->'payload'->>'transactionId')::bigint FROM events \
             WHERE event_type = 'ocpp_command.requested' AND payload->>'action' = 'RemoteStopTransaction' \
             AND payload->>'chargePointId' = $1 ORDER BY position",
        )
        .bind(c.id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The codes of the stop requests on a session's own stream.
    async fn stop_codes(&self, id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT payload->>'code' FROM events WHERE stream_id = $1 \
             AND event_type = 'charge_session.stop_requested' ORDER BY position",
        )
        .bind(format!("charge_session-{id}"))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_budget_stop_reaches_only_the_charger_whose_session_used_its_pre_authorization_up(pool: PgPool) {
    let w = world(pool).await;
    let (one, two) = (w.company(), w.company());
    // The budget charger shares its company with one charger and its
    // transaction id with both.
    let budget = w.register("TX-E1", 51, &one).await;
    let others = [w.register("TX-E2", 52, &one).await, w.register("TX-F1", 61, &two).await];
    // Every charge point reports 4000 Wh while charging (R$ 8.00 at 2.00 + 1.50/kWh),
    // then stops at its own energy.
    let budget_energy = 4_500;
    let energies = [6_000, 7_200];
    let mut budget_cp = w.connect(&budget, 1_000 + budget_energy).await;
    let mut cps = Vec::new();
    for (c, e) in others.iter().zip(energies) {
        cps.push(w.connect(c, 1_000 + e).await);
    }

    // The others charge first, with R$ 50.00 pre-authorized: far from their budget.
    let mut sessions = Vec::new();
    for c in &others {
        sessions.push(w.start(c).await);
    }
    for cp in &mut cps {
        cp.until("CHARGING").await;
    }
    for (c, (id, _)) in others.iter().zip(&sessions) {
        w.until(c, id, "CHARGING with 4000 Wh", |s| s["status"] == "CHARGING" && s["energyWh"] == 4000).await;
    }

    // Then the budget session, with R$ 5.00 pre-authorized: its first 4000 Wh
    // (R$ 8.00) use it up, so the platform stops the charger itself.
    let (budget_id, budget_charge) = w.start_authorizing(&budget, 500).await;
    budget_cp.until("CHARGING").await;
    let done = w.until(&budget, &budget_id, "COMPLETED", |s| s["status"] == "COMPLETED").await;
    assert_eq!(
        (
            done["transactionId"].as_str(),
            done["stopReason"].as_str(),
            done["energyWh"].as_i64(),
            done["capturedCents"].as_i64(),
            done["releasedCents"].as_i64()
        ),
        (Some("1"), Some("budget_exhausted"), Some(budget_energy), Some(500), Some(0)),
        "{done}"
    );
    assert_eq!(w.captures(&budget_charge), vec![500], "exactly the authorized amount, once");
    assert_eq!(w.stopped_energies(&budget_id).await, vec![budget_energy]);
    assert_eq!(w.stop_codes(&budget_id).await, vec!["budget_exhausted"]);
    assert_eq!(
        budget_cp.result().await["seen"],
        json!(["RemoteStartTransaction", "RemoteStopTransaction"]),
        "the platform stopped the budget charger itself"
    );

    // The budget stop went to the budget charger only: the others are still
    // charging, with no stop asked of them or recorded on their sessions.
    assert_eq!(w.remote_stops(&budget).await, vec![1]);
    for (c, (id, _)) in others.iter().zip(&sessions) {
        assert_eq!(w.remote_stops(c).await, Vec::<i64>::new(), "no remote stop targets {}", c.id);
        assert_eq!(w.stop_codes(id).await, Vec::<String>::new(), "no stop reached the session on {}", c.id);
        let s = w.session(c, id).await;
        assert_eq!(
            (s["status"].as_str(), s["energyWh"].as_i64(), s["runningCostCents"].as_i64()),
            (Some("CHARGING"), Some(4000), Some(800)),
            "{}: {s}",
            c.id
        );
    }
    for c in others.iter().chain([&budget]) {
        assert_eq!(w.transaction_ids(c).await, vec!["1"], "every charger's first transaction is 1");
    }

    // Stopped by the test, each of the others captures exactly its own cost.
    for (c, (id, _)) in others.iter().zip(&sessions) {
        w.stop(c, id).await;
    }
    for ((c, (id, charge)), e) in others.iter().zip(&sessions).zip(energies) {
        let done = w.until(c, id, "COMPLETED", |s| s["status"] == "COMPLETED").await;
        assert_eq!(
            (
                done["stopReason"].as_str(),
                done["energyWh"].as_i64(),
                done["capturedCents"].as_i64(),
                done["releasedCents"].as_i64()
            ),
            (Some("driver"), Some(e), Some(cost(e)), Some(5000 - cost(e))),
            "{}: {done}",
            c.id
        );
        assert_eq!(w.captures(charge), vec![cost(e)], "{} captures exactly its own cost, once", c.id);
        assert_eq!(w.stopped_energies(id).await, vec![e], "nothing from another charger reached {}", c.id);
        assert_eq!(w.stop_codes(id).await, vec!["driver"]);
        assert_eq!(w.remote_stops(c).await, vec![1], "only the test's stop targets {}", c.id);
    }
    for cp in cps {
        assert_eq!(cp.result().await["seen"], json!(["RemoteStartTransaction", "RemoteStopTransaction"]));
    }
    assert_eq!(w.remote_stops(&budget).await, vec![1], "the budget charger was stopped once");
    assert!(w.fake.problems().is_empty(), "{:?}", w.fake.problems());
    assert_log_verifies(&w.app.running.state.store).await;
}
