//! Runs the independent Python grpcio clients (`tests/python/`) against a real node: the
//! account client's tests, and the `google.rpc` error details through reflection
//! (`reflect_error_details.py` resolves `google.rpc.ErrorInfo` by symbol, with its imports, and
//! decodes the `ErrorInfo` of a refused call, as `grpcurl` does).
//!
//! The interpreter is `ROSETTA_PYTHON` (default `python3`) and must have `pytest`, `grpcio`,
//! `grpcio-reflection` and `grpcio-health-checking`; `scripts/test` installs them into
//! `.venv`. Without them these tests fail: they never pass silently.

use rosetta_testkit as support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_via_reflection() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    pytest(dir, "3 passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reflection_client_decodes_error_info() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/reflect_error_details.py"
    );
    pytest(file, "2 passed").await;
}

/// Runs pytest on `target` against a fresh node and expects its summary to say `summary`.
async fn pytest(target: &'static str, summary: &str) {
    let server = TestServer::start(Backend::Sqlite).await;
    let python = std::env::var("ROSETTA_PYTHON").unwrap_or_else(|_| "python3".into());
    let addr = server.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", target])
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
    .expect("python runner");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "python client failed:\n{text}");
    assert!(text.contains(summary), "expected {summary}:\n{text}");
    server.stop().await;
}
