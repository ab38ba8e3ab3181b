//! A client generated from the committed document by a well-known generator
//! (openapi-python-client, pinned in scripts/test-requirements.txt) works
//! against the server (issue 13): generation succeeds with warnings treated
//! as failures (it used to drop the eight list operations), and the generated
//! API alone drives `tests/client/scenario.py`.

use super::*;

fn venv_bin(name: &str) -> std::path::PathBuf {
    python().parent().map(|bin| bin.join(name)).unwrap_or_else(|| name.into())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_generated_client_registers_a_terminal_and_pays(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("chargeledger-client-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("generator.yaml");
    std::fs::write(&config, "post_hooks: []\npackage_name_override: chargeledger_client\n").unwrap();
    let out = tokio::process::Command::new(venv_bin("openapi-python-client"))
        .arg("generate")
        .arg("--path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json"))
        .args(["--meta", "none", "--fail-on-warning", "--overwrite", "--config"])
        .arg(&config)
        .arg("--output-path")
        .arg(dir.join("chargeledger_client"))
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "generation failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));

    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let run = tokio::process::Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/client/scenario.py"))
        .arg(app.url(""))
        .arg(&token)
        .env("PYTHONPATH", &dir)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run).await.unwrap().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "scenario failed:\n{stdout}\n{}", text(&out.stderr));
    assert!(stdout.trim_end().ends_with("14 passed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
