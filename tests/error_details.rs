//! The `google.rpc` error details through reflection: the independent Python client
//! (`tests/python/reflect_error_details.py`) resolves `google.rpc.ErrorInfo` by symbol, with
//! its imports, and decodes the `ErrorInfo` of a refused call, as `grpcurl` does.
//!
//! The interpreter is `ROSETTA_PYTHON` (default `python3`) with the packages of
//! `tests/python/requirements.txt` (`scripts/test` installs them); without them this fails.

use rosetta_testkit as support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reflection_client_decodes_error_info() {
    let server = TestServer::start(Backend::Sqlite).await;
    let python = std::env::var("ROSETTA_PYTHON").unwrap_or_else(|_| "python3".into());
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/reflect_error_details.py"
    );
    let addr = server.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", file])
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
    assert!(
        text.contains("2 passed"),
        "expected two passing tests:\n{text}"
    );
    server.stop().await;
}
