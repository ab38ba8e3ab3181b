//! A logical-replication subscriber of the events table (finding 3 of issue
//! 11): its transaction ids have nothing to do with the positions it receives,
//! so every role refuses to run on it.

use std::time::Duration;

use commands::{deployment, EventStore, ExpectedVersion};

use super::cluster::{event, migrate, write, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_replication_subscriber_is_refused() {
    let origin = Cluster::primary("logical-origin", &[("wal_level", "logical")]);
    origin.create_db("app").await;
    let o = origin.pool("app", 4).await;
    migrate(&o).await;
    let store = EventStore::new(o.clone());
    for n in 0..3 {
        let expected = if n == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Any };
        let w = write("s-1", expected, vec![event(n)]);
        store.append(&[w], None).await.unwrap();
    }
    sqlx::raw_sql("CREATE PUBLICATION chargeledger_log FOR TABLE events").execute(&o).await.unwrap();

    let copy = Cluster::primary("logical-copy", &[]);
    copy.create_db("app").await;
    let c = copy.pool("app", 4).await;
    migrate(&c).await;
    assert!(deployment::check_writable(&c).await.is_ok(), "a plain primary passes");
    sqlx::raw_sql(&format!(
        "CREATE SUBSCRIPTION chargeledger_log CONNECTION 'host=127.0.0.1 port={} dbname=app user=postgres' PUBLICATION chargeledger_log",
        origin.port
    ))
    .execute(&c)
    .await
    .unwrap();
    let mut copied = 0i64;
    for _ in 0..1000 {
        copied = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&c).await.unwrap();
        if copied == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(copied, 3, "the subscription copied the log");

    let err = deployment::check_writable(&c).await.unwrap_err();
    assert!(matches!(err, deployment::DeploymentError::Subscriber), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chargeledger"))
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHARGELEDGER_DATABASE_URL", copy.url("app"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("logical-replication subscriber"), "{text}");
    sqlx::raw_sql("DROP SUBSCRIPTION chargeledger_log").execute(&c).await.unwrap();
}
