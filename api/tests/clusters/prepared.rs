//! Prepared transactions (finding 5 of issue 11): one in another database does
//! not hold this database's log readers back; one in this database does (it
//! could still append), and `/metrics` shows how old the oldest is.

use std::time::Duration;

use chargeledger_api::{app, config::Config};
use commands::{EventStore, ExpectedVersion};

use super::cluster::{event, migrate, write, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_holds_back_only_readers_of_its_own_database() {
    let cluster = Cluster::primary("prepared", &[("max_prepared_transactions", "10"), ("autovacuum", "off")]);
    cluster.create_db("app").await;
    cluster.create_db("other").await;
    let pool = cluster.pool("app", 6).await;
    migrate(&pool).await;
    let other = cluster.pool("other", 2).await;
    sqlx::raw_sql("CREATE TABLE t (x int); BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'elsewhere'")
        .execute(&other)
        .await
        .unwrap();

    let store = EventStore::new(pool.clone());
    let first = store.append(&[write("s-1", ExpectedVersion::NoStream, vec![event(0)])], None).await.unwrap();
    let read = store.read_all(0, 10).await.unwrap();
    assert_eq!(read.len(), 1, "a prepared transaction of another database held the reader back");

    // One of this database has an xid and could append: it must hold back.
    sqlx::raw_sql("BEGIN; SELECT pg_current_xact_id(); PREPARE TRANSACTION 'here'").execute(&pool).await.unwrap();
    store.append(&[write("s-2", ExpectedVersion::NoStream, vec![event(0)])], None).await.unwrap();
    assert!(
        store.read_all(first[0].position, 10).await.unwrap().is_empty(),
        "passed a prepared transaction of this database"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let running = app::start(Config::for_tests(cluster.url("app")), pool.clone(), false).await.unwrap();
    let metrics = reqwest::get(running.url("/metrics")).await.unwrap().text().await.unwrap();
    let value = |line: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<i64>().ok())
    };
    assert_eq!(value("chargeledger_pg_prepared_xacts{scope=\"this_database\"}"), Some(1), "{metrics}");
    assert_eq!(value("chargeledger_pg_prepared_xacts{scope=\"other_databases\"}"), Some(1), "{metrics}");
    assert!(
        value("chargeledger_pg_prepared_xact_oldest_age_seconds{scope=\"this_database\"}").unwrap_or(0) >= 1,
        "{metrics}"
    );
    running.stop().await;

    sqlx::raw_sql("COMMIT PREPARED 'here'").execute(&pool).await.unwrap();
    assert_eq!(store.read_all(first[0].position, 10).await.unwrap().len(), 1);
    sqlx::raw_sql("ROLLBACK PREPARED 'elsewhere'").execute(&other).await.unwrap();
}
