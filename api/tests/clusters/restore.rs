//! A `pg_dump` restore into a cluster whose transaction counter is behind the
//! log (finding 2 of issue 11): refused with the documented message, and the
//! documented procedure (`pg_resetwal -e`) makes it work.

use std::process::Command;

use commands::{deployment, EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

use super::cluster::{event, migrate, write, Cluster};

fn chargeledger_migrate(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chargeledger"))
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHARGELEDGER_DATABASE_URL", url)
        .env("CHARGELEDGER_LOG", "error")
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn client(program: &str, args: &[&str]) {
    let out = Command::new(format!("/usr/lib/postgresql/15/bin/{program}")).args(args).output().unwrap();
    assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_behind_the_log_is_refused_until_the_counter_is_advanced() {
    let origin = Cluster::primary("restore-origin", &[]);
    origin.create_db("app").await;
    let pool = origin.pool("app", 4).await;
    migrate(&pool).await;
    // The origin has lived longer than a fresh cluster: its counter is ahead.
    for _ in 0..2000 {
        sqlx::query("SELECT pg_current_xact_id()").execute(&pool).await.unwrap();
    }
    let store = EventStore::new(pool.clone());
    for i in 0..10u64 {
        let expected = if i < 2 { ExpectedVersion::NoStream } else { ExpectedVersion::Any };
        store.append(&[write(&format!("restored-{}", i % 2), expected, vec![event(i)])], None).await.unwrap();
    }
    commands::seal::seal_all(&store).await.unwrap();
    let restored = store.read_all(0, 100).await.unwrap();
    pool.close().await;

    let target = Cluster::primary("restore-target", &[("autovacuum", "off")]);
    target.create_db("app").await;
    let dump = std::env::temp_dir().join(format!("chargeledger-dump-{}.sql", Uuid::new_v4()));
    let (dump_s, port_o, port_t) =
        (dump.to_string_lossy().into_owned(), origin.port.to_string(), target.port.to_string());
    client("pg_dump", &["-h", "127.0.0.1", "-p", &port_o, "-U", "postgres", "-d", "app", "-x", "-O", "-f", &dump_s]);
    client(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port_t,
            "-U",
            "postgres",
            "-d",
            "app",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            &dump_s,
        ],
    );
    let _ = std::fs::remove_file(&dump);

    // Refused, by `migrate` (and so by `serve`) and by every role's start.
    let (ok, output) = chargeledger_migrate(&target.url("app"));
    assert!(!ok, "migrate accepted a restore behind the log: {output}");
    assert!(output.contains("transaction counter") && output.contains("pg_resetwal -e 1"), "{output}");
    let pool = target.pool("app", 4).await;
    let err = deployment::check_writable(&pool).await.unwrap_err();
    assert!(matches!(err, deployment::DeploymentError::CounterBehind { epoch: 1, .. }), "{err}");

    // Bypassing the check, an append that lands on a restored position is a
    // typed refusal (never a database error answered as a 500), and appends nothing.
    let victim = restored.iter().find(|e| e.position & 0xffff == 0).unwrap().position >> 16;
    loop {
        let xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&pool).await.unwrap();
        assert!(xid < victim, "the counter passed {victim} before the collision was set up");
        if xid == victim - 1 {
            break;
        }
    }
    let behind = EventStore::new(pool.clone());
    let err = behind.append(&[write("fresh-1", ExpectedVersion::NoStream, vec![event(99)])], None).await.unwrap_err();
    assert!(matches!(err, StoreError::CounterBehind(_)), "{err}");
    assert!(behind.read_stream("fresh-1").await.unwrap().is_empty());
    pool.close().await;

    // The documented procedure: stop, advance the epoch, start, migrate.
    target.stop();
    target.resetwal(&["-e", "1"]);
    target.start();
    let (ok, output) = chargeledger_migrate(&target.url("app"));
    assert!(ok, "{output}");
    let pool = target.pool("app", 4).await;
    let store = EventStore::new(pool.clone());
    let max_restored = restored.iter().map(|e| e.position).max().unwrap();
    let new = store.append(&[write("restored-0", ExpectedVersion::Any, vec![event(100)])], None).await.unwrap();
    assert!(new[0].position > max_restored);
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), restored.len() + 1, "the restored log and the new event are readable");
    assert_eq!(&all[..restored.len()], &restored[..]);
    commands::seal::seal_all(&store).await.unwrap();
    let report = commands::audit::verify(&store).await.unwrap();
    assert!(report.ok(), "{report:?}");
}
