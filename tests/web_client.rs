//! Rosetta Web in a real browser: starts the `rosetta all` binary (web client, gRPC with
//! gRPC-Web, pipe bridge) on free ports and runs `web/tests/chat.spec.mjs`, which drives
//! Debian's Chromium through playwright-core: two people register in two browser contexts,
//! befriend each other and chat both ways live, and a pipe user's message appears in the page.
//! Screenshots land in `target/web-test/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `ROSETTA_CHROMIUM`) and `web/node_modules`
//! (`npm ci` in `web/`); `scripts/test` installs them. Without them the test fails, naming
//! what is missing.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// How long the browser script may take (it waits at most 30 s for any one step).
const SCRIPT_BOUND: Duration = Duration::from_secs(300);
/// How long the server may take to open its listeners.
const START_BOUND: Duration = Duration::from_secs(60);

/// The `rosetta all` child; killed when dropped.
struct Rosetta {
    child: Child,
    log: PathBuf,
}

impl Rosetta {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits (polling: a child's exit has no event here) for a clean exit.
    fn terminate(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + START_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit status {status}; log:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rosetta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address (bound, read, released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

fn start(dir: &Path, grpc: SocketAddr, web: SocketAddr, pipe: SocketAddr) -> Rosetta {
    let log = dir.join("rosetta.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_rosetta"));
    command
        .arg("all")
        // Only what the test sets, not the developer's ROSETTA_* variables.
        .env_clear()
        .env("RUST_LOG", "info")
        .env("ROSETTA_DATA_DIR", dir)
        .env("ROSETTA_GRPC_LISTEN", grpc.to_string())
        .env("ROSETTA_WEB_LISTEN", web.to_string())
        .env("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string())
        // Every person in the test comes from 127.0.0.1.
        .env("ROSETTA_ACCOUNT__SOURCE_REGISTER_PER_MINUTE", "0")
        .env("ROSETTA_ACCOUNT__SOURCE_LOGIN_PER_MINUTE", "0");
    for off in ["DPC", "IMPS", "OURCHAT", "CLOUDCHAT"] {
        command.env(format!("ROSETTA_BRIDGES__{off}__ENABLED"), "false");
    }
    let child = command
        .current_dir(dir)
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("spawn rosetta");
    Rosetta { child, log }
}

/// Polls until `addr` accepts connections (the process offers no readiness event).
fn accepting(addr: SocketAddr, process: &Rosetta) {
    let deadline = Instant::now() + START_BOUND;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{addr} never accepted; log:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails with what to install when the browser test's tools are missing.
fn check_tools(repo: &Path, chromium: &str) {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "`node` is not installed (Debian: apt-get install nodejs npm); scripts/test installs \
         what the web test needs"
    );
    assert!(
        Path::new(chromium).exists(),
        "{chromium} is missing (Debian: apt-get install chromium; or set ROSETTA_CHROMIUM); \
         scripts/test installs it"
    );
    assert!(
        repo.join("web/node_modules/playwright-core").is_dir(),
        "web/node_modules/playwright-core is missing: run `npm ci` in web/ (scripts/test does)"
    );
}

/// Runs the browser script to its end, or kills it at the bound.
fn run_script(repo: &Path, envs: &[(&str, String)]) -> Output {
    let child = Command::new("node")
        .arg("web/tests/chat.spec.mjs")
        .current_dir(repo)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(SCRIPT_BOUND) {
        Ok(output) => output.expect("node ran"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the browser test did not finish within {SCRIPT_BOUND:?}");
        }
    }
}

#[test]
fn two_browsers_and_a_pipe_client_chat_live() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("ROSETTA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    check_tools(repo, &chromium);
    // Next to the test binaries' scratch directory: target/web-test.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-test");
    let _ = std::fs::remove_dir_all(&artifacts);

    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, web, pipe) = (free_addr(), free_addr(), free_addr());
    let mut rosetta = start(dir.path(), grpc, web, pipe);
    for addr in [grpc, web, pipe] {
        accepting(addr, &rosetta);
    }

    let output = run_script(
        repo,
        &[
            ("ROSETTA_WEB_URL", format!("http://{web}")),
            ("ROSETTA_PIPE_ADDR", pipe.to_string()),
            ("ROSETTA_ARTIFACTS", artifacts.display().to_string()),
            ("ROSETTA_CHROMIUM", chromium),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}); screenshots in {}; server log:\n{}",
        output.status,
        artifacts.display(),
        rosetta.log()
    );
    assert!(stdout.contains("[web test] passed"), "{stdout}");
    for shot in ["alice-chat.png", "bob-chat.png", "alice-pipe-chat.png"] {
        assert!(artifacts.join(shot).is_file(), "no screenshot {shot}");
    }

    // The web listener stops with the rest of the process.
    rosetta.terminate();
    assert!(
        std::net::TcpStream::connect(web).is_err(),
        "the web client is still served"
    );
}
