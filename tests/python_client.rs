//! Runs the independent Python grpcio client (`tests/python/`) against a real node.
//!
//! The interpreter is `ROSETTA_PYTHON` (default `python3`) and must have `pytest`, `grpcio`,
//! `grpcio-reflection` and `grpcio-health-checking`; `scripts/test` installs them into
//! `.venv`. Without them this test fails: it never passes silently.

use rosetta_testkit as support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_via_reflection() {
    let server = TestServer::start(Backend::Sqlite).await;
    let python = std::env::var("ROSETTA_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let addr = server.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", dir])
            .env("ROSETTA_GRPC", addr)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {python}: {err}"));
        let deadline = Instant::now() + Duration::from_secs(180);
        while child.try_wait().expect("wait for python").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().expect("python output")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "python client failed:\n{text}");
    assert!(
        text.contains("3 passed"),
        "expected three passing Python tests:\n{text}"
    );
    server.stop().await;
}
