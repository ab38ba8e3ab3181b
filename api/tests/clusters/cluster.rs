//! Scratch PostgreSQL clusters for the deployment tests: `initdb`, `pg_ctl`,
//! `pg_basebackup` and `pg_resetwal` from the installed PostgreSQL 15, each
//! cluster in its own temporary directory on a free port, stopped and removed
//! on drop. As root the binaries run as the `postgres` user (initdb refuses
//! root).

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::Duration,
};

use commands::{ExpectedVersion, Metadata, NewEvent, StreamWrite};
use serde_json::json;
use sqlx::{postgres::PgPoolOptions, PgPool};
use uuid::Uuid;

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL binary (as `postgres` when we are root).
fn pg(program: &str, args: &[&str]) -> Output {
    let path = format!("{BIN}/{program}");
    let output = if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--", &path]).args(args).output()
    } else {
        Command::new(&path).args(args).output()
    };
    output.unwrap_or_else(|e| panic!("cannot run {path}: {e}"))
}

fn must(program: &str, args: &[&str]) -> String {
    let out = pg(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch_dir(name: &str) -> PathBuf {
    let base = if is_root() {
        must_plain("runuser", &["-u", "postgres", "--", "mktemp", "-d", &format!("/tmp/chargeledger-{name}-XXXXXX")])
    } else {
        must_plain("mktemp", &["-d", &format!("/tmp/chargeledger-{name}-XXXXXX")])
    };
    PathBuf::from(base.trim())
}

fn must_plain(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One running (or stopped) cluster.
pub struct Cluster {
    root: PathBuf,
    pub port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn data_str(&self) -> String {
        self.data().to_string_lossy().into_owned()
    }

    fn configure(&self, settings: &[(&str, &str)]) {
        let mut conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\nmax_connections = 100\n",
            self.port,
            self.root.display()
        );
        for (k, v) in settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        let file = self.data().join("postgresql.auto.conf");
        // Written through the postgres user's shell: the data directory is its own.
        let script = format!("cat >> '{}'", file.display());
        let mut child = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", "sh", "-c", &script])
                .stdin(std::process::Stdio::piped())
                .spawn()
        } else {
            Command::new("sh").args(["-c", &script]).stdin(std::process::Stdio::piped()).spawn()
        }
        .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(conf.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// A new primary with `settings` added to its configuration.
    pub fn primary(name: &str, settings: &[(&str, &str)]) -> Self {
        let cluster = Self { root: scratch_dir(name), port: free_port() };
        let data = cluster.data_str();
        must("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        cluster.configure(settings);
        cluster.start();
        cluster
    }

    /// A hot standby streaming from `primary` (`pg_basebackup -R`).
    pub fn standby_of(primary: &Cluster, name: &str) -> Self {
        let cluster = Self { root: scratch_dir(name), port: free_port() };
        let data = cluster.data_str();
        let port = primary.port.to_string();
        must(
            "pg_basebackup",
            &[
                "-D",
                &data,
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        cluster.configure(&[("hot_standby", "on")]);
        cluster.start();
        cluster
    }

    pub fn start(&self) {
        let log = self.root.join("log").to_string_lossy().into_owned();
        must("pg_ctl", &["-D", &self.data_str(), "-l", &log, "-w", "-t", "60", "start"]);
    }

    pub fn stop(&self) {
        must("pg_ctl", &["-D", &self.data_str(), "-w", "-t", "60", "-m", "fast", "stop"]);
    }

    /// `pg_resetwal` on the stopped cluster (the documented restore procedure).
    pub fn resetwal(&self, args: &[&str]) -> String {
        let data = self.data_str();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-D", &data]);
        must("pg_resetwal", &all)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub async fn pool(&self, db: &str, connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&self.url(db))
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url(db)))
    }

    /// Creates database `db` (on a primary).
    pub async fn create_db(&self, db: &str) {
        let admin = self.pool("postgres", 1).await;
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&admin).await.unwrap();
        admin.close().await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg("pg_ctl", &["-D", &self.data_str(), "-w", "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Waits until `standby` has replayed everything `primary` has written so far.
pub async fn caught_up(primary: &PgPool, standby: &PgPool) {
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text").fetch_one(primary).await.unwrap();
    for _ in 0..3000 {
        let done: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
            .bind(&lsn)
            .fetch_one(standby)
            .await
            .unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the standby did not replay up to {lsn}");
}

/// Applies the platform's migrations to `pool`.
pub async fn migrate(pool: &PgPool) {
    chargeledger_api::app::MIGRATOR.run(pool).await.unwrap();
}

/// A test event carrying `n`.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "test.happened".into(),
        schema_version: 1,
        payload: json!({ "n": n }),
    }
}

/// A write of `events` to `stream`, with the predecessor read in the transaction.
pub fn write(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite { stream_id: stream.into(), expected, prev_hash: None, events, metadata: Metadata::system("test") }
}
