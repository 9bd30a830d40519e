//! Operating the real `rosetta all` binary with `rosetta admin …` (issue 23): the CLI grants
//! the role in the database, `status` lists the four roles and the pipe bridge of the one
//! process (a logged-in pipe client counted), `maintenance on` makes the pipe bridge refuse a
//! login and `maintenance off` lets it in again. Child processes, real sockets, SQLite.

mod clients;

use std::{net::SocketAddr, path::Path, process::Command, time::Duration};

use clients::{PATIENCE, Pipe, process::Rosetta};
use rosetta_proto::account::v1::{
    LoginRequest, PasswordScheme, RegisterRequest, account_service_client::AccountServiceClient,
    login_request::Identifier,
};
use serde_json::Value;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// `rosetta admin <args>` against the node in `dir`: its one line of JSON. (The command bounds
/// its own calls; the wait here bounds the process.)
async fn admin(dir: &Path, args: &[&str]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rosetta"));
    command
        .arg("admin")
        .args(args)
        .env_clear()
        .env("ROSETTA_DATA_DIR", dir);
    let out = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("rosetta admin answers in time")
    .expect("the wait runs")
    .expect("rosetta admin runs");
    assert!(
        out.status.success(),
        "rosetta admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_shows_status_and_switches_maintenance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, pipe) = (free_addr(), free_addr());
    let mut env = vec![
        ("ROSETTA_GRPC_LISTEN", grpc.to_string()),
        ("ROSETTA_METRICS_LISTEN", String::new()),
        ("ROSETTA_WEB_LISTEN", String::new()),
        ("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string()),
        ("ROSETTA_STATUS_INTERVAL_MS", "200".into()),
    ];
    // Every bridge but pipe off, so that the test binds no fixed port.
    for off in [
        "ROSETTA_BRIDGES__DPC__ENABLED",
        "ROSETTA_BRIDGES__IMPS__ENABLED",
        "ROSETTA_BRIDGES__OURCHAT__ENABLED",
        "ROSETTA_BRIDGES__CLOUDCHAT__ENABLED",
    ] {
        env.push((off, "false".into()));
    }
    let _rosetta = Rosetta::spawn(&["all"], dir.path(), &env);
    let channel = rosetta_testkit::connect(&format!("http://{grpc}"), PATIENCE).await;
    let mut account = AccountServiceClient::new(channel);
    account
        .register(RegisterRequest {
            username: "opal".into(),
            password: "opal-pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            nickname: "Opal".into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let granted = admin(dir.path(), &["grant", "opal"]).await;
    assert!(granted["granted"].as_i64().is_some(), "{granted}");
    let token = account
        .login(LoginRequest {
            identifier: Some(Identifier::Username("opal".into())),
            password: "opal-pw".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: "operating-test".into(),
        })
        .await
        .expect("login")
        .into_inner()
        .access_token;
    let server = format!("http://{grpc}");
    let api = ["--server", server.as_str(), "--token", token.as_str()];
    let with_api = |args: &[&'static str]| -> Vec<String> {
        args.iter().copied().chain(api).map(str::to_owned).collect()
    };

    // A pipe client logged in; `status` shows it on the pipe bridge of the same process as
    // the four roles (a deadline-bounded poll of the reports).
    let (_pia, _, _) = Pipe::user(pipe, "pia").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let status = loop {
        let args = with_api(&["status"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let status = admin(dir.path(), &args).await;
        if status["protocols"]["pipe"] == serde_json::json!({"connections": 1, "online_users": 1}) {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipe 1/1 not seen: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let instances = status["instances"].as_array().expect("instances");
    let mut names: Vec<(String, String)> = instances
        .iter()
        .map(|i| (i["kind"].to_string(), i["name"].to_string()))
        .collect();
    names.sort();
    let expected: Vec<(String, String)> = [
        ("bridge", "pipe"),
        ("role", "account"),
        ("role", "files"),
        ("role", "messaging"),
        ("role", "social"),
    ]
    .iter()
    .map(|(k, n)| (format!("\"{k}\""), format!("\"{n}\"")))
    .collect();
    assert_eq!(names, expected, "{status}");
    let process = &instances[0]["process_id"];
    assert!(
        instances.iter().all(|i| &i["process_id"] == process),
        "one process: {status}"
    );
    assert!(
        instances
            .iter()
            .all(|i| i["version"] == env!("CARGO_PKG_VERSION") && i["stale"] == false),
        "{status}"
    );
    assert_eq!(status["maintenance"]["enabled"], false);

    // Maintenance on: the pipe bridge refuses a login in its own words; off: it takes it.
    let args = with_api(&["maintenance", "on", "--message", "upgrade"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let on = admin(dir.path(), &args).await;
    assert_eq!(
        (&on["enabled"], &on["message"], &on["changed_by"]),
        (&true.into(), &"upgrade".into(), &"opal".into()),
        "{on}"
    );
    let mut late = Pipe::connect(pipe).await;
    assert_eq!(
        late.call("login|pia|pw-pia").await,
        "login_error|登录失败！"
    );
    let args = with_api(&["maintenance", "off"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let off = admin(dir.path(), &args).await;
    assert_eq!(off["enabled"], false, "{off}");
    let login = late.call("login|pia|pw-pia").await;
    assert!(login.starts_with("login_succ|"), "{login}");
}
