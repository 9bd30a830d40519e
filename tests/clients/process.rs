//! `rosetta` as a child process, for the tests that start the real binary: its own data
//! directory, only the environment the test sets (not the developer's `ROSETTA_*`), its output
//! in `rosetta.log` there; killed when dropped, its log printed when the test is failing.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

pub struct Rosetta {
    pub child: Child,
    log: PathBuf,
}

impl Rosetta {
    /// `rosetta ARGS…` on `dir` with `env`, ready to spawn (a test may add to it first).
    pub fn command(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosetta"));
        command
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .env("ROSETTA_DATA_DIR", dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir);
        command
    }

    /// Starts `command` (made by [`Rosetta::command`] on `dir`), logging into `dir`.
    pub fn start(mut command: Command, dir: &Path) -> Self {
        let log = dir.join("rosetta.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn rosetta");
        Self { child, log }
    }

    /// `rosetta ARGS…` on `dir` with `env`, started.
    pub fn spawn(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Self {
        Self::start(Self::command(args, dir, env), dir)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and polls until the process exits, which it must do cleanly and within
    /// `bound`; returns how long it took.
    pub async fn terminate(&mut self, bound: Duration) -> Duration {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let since = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit status {status}; log:\n{}",
                    self.log()
                );
                return since.elapsed();
            }
            assert!(
                since.elapsed() < bound,
                "still running {bound:?} after SIGTERM; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Rosetta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("rosetta log:\n{}", self.log());
        }
    }
}
