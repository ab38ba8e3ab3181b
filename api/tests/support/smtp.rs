//! A real SMTP sink for the tests: aiosmtpd (PyPI, in the test venv) writing
//! every message it accepts to a maildir.
#![allow(dead_code, clippy::unwrap_used)]

use std::{path::PathBuf, process::Stdio, time::Duration};

use super::{free_port, python};
use tokio::process::{Child, Command};

pub struct SmtpSink {
    pub url: String,
    pub dir: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl SmtpSink {
    /// A sink on a free port (not started: see [`SmtpSink::start`]).
    pub fn new() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("chargeledger-smtp-{}", uuid::Uuid::new_v4()));
        Self { url: format!("smtp://127.0.0.1:{port}"), dir, child: None, port }
    }

    pub async fn start(&mut self) {
        let child = Command::new(python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the SMTP sink did not start");
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}
