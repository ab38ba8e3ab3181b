//! The Standard Webhooks receiver (tests/webhooks/receiver.py in the test venv):
//! verifies signatures with the PyPI `standardwebhooks` package and records
//! every body it accepted.
#![allow(dead_code, clippy::unwrap_used)]

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::{free_port, python};

/// The receiver: tests/webhooks/receiver.py in the test venv.
pub struct Receiver {
    pub url: String,
    pub dir: PathBuf,
    _child: Child,
}

impl Receiver {
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chargeledger-receiver-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/receiver.py"))
            .arg(port.to_string())
            .arg(dir.join("secrets"))
            .arg(dir.join("control"))
            .arg(dir.join("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { url: format!("http://127.0.0.1:{port}/hooks"), dir, _child: child };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the receiver did not start");
    }

    pub fn secrets(&self, secrets: &[&str]) {
        std::fs::write(self.dir.join("secrets"), secrets.join("\n")).unwrap();
    }

    pub fn answer(&self, control: &str) {
        std::fs::write(self.dir.join("control"), control).unwrap();
    }

    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let got = self.received();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the receiver never saw {what}: {:?}", self.received());
    }
}
