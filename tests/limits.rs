//! The node protects itself from idle clients: `rosetta all` started with the usual soft
//! descriptor limit (1,024) raises it at start, so a thousand idle connections on one bridge
//! neither block a new gRPC login nor a new connection on another bridge.

mod clients;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::unix::process::CommandExt as _,
    path::Path,
    time::{Duration, Instant},
};

use clients::{PATIENCE, Ws, process::Rosetta};
use rosetta_proto::account::v1::{
    LoginRequest, PasswordScheme, RegisterRequest, account_service_client::AccountServiceClient,
    login_request::Identifier,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};

/// The soft descriptor limit most systems start a process with.
const SOFT_LIMIT: libc::rlim_t = 1_024;
const IDLE: usize = 1_000;
/// Idle connections per source address, under the default per-address cap (256).
const PER_ADDRESS: usize = 250;
/// What the pipe bridge answers a `login` without its fields: proof the connection is served
/// (a connection refused over a cap gets `login_error|登录失败！` instead).
const SERVED: &str = "login_error|用户名或密码错误！";

/// `rosetta all`, started with its soft descriptor limit lowered to [`SOFT_LIMIT`] (the hard
/// limit left as it is).
fn spawn_with_low_soft_limit(dir: &Path, env: &[(&str, String)]) -> Rosetta {
    let mut command = Rosetta::command(&["all"], dir, env);
    // SAFETY: only async-signal-safe calls (getrlimit, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = SOFT_LIMIT.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Rosetta::start(command, dir)
}

/// A free loopback address (bound, read, released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Polls until `addr` accepts connections (no event says the process is up).
async fn accepting(addr: SocketAddr, process: &Rosetta) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{addr} never accepted; log:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An idle pipe client from `source`, once the bridge has shown it serves it.
async fn idle_pipe(pipe: SocketAddr, source: IpAddr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let mut stream = socket.connect(pipe).await.map_err(|e| e.to_string())?;
    stream
        .write_all(b"login")
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = vec![0u8; 256];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut reply))
        .await
        .map_err(|_| "no reply in time (not accepted)".to_owned())?
        .map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
    if reply == SERVED {
        Ok(stream)
    } else {
        Err(format!("not served: {reply:?}"))
    }
}

async fn grpc_account(grpc: SocketAddr) -> AccountServiceClient<tonic::transport::Channel> {
    tokio::time::timeout(
        PATIENCE,
        AccountServiceClient::connect(format!("http://{grpc}")),
    )
    .await
    .expect("a new gRPC connection in time")
    .expect("gRPC connects")
}

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_block_neither_grpc_nor_another_bridge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, pipe, ourchat) = (free_addr(), free_addr(), free_addr());
    // The bridges on fixed ports are off, so the test binds none.
    let env = [
        ("ROSETTA_GRPC_LISTEN", grpc.to_string()),
        ("ROSETTA_BRIDGES__PIPE__LISTEN", pipe.to_string()),
        ("ROSETTA_BRIDGES__OURCHAT__LISTEN", ourchat.to_string()),
        ("ROSETTA_BRIDGES__DPC__ENABLED", "false".into()),
        ("ROSETTA_BRIDGES__IMPS__ENABLED", "false".into()),
        ("ROSETTA_BRIDGES__CLOUDCHAT__ENABLED", "false".into()),
    ];
    let all = spawn_with_low_soft_limit(dir.path(), &env);
    accepting(grpc, &all).await;
    accepting(pipe, &all).await;
    accepting(ourchat, &all).await;
    let registered = grpc_account(grpc)
        .await
        .register(RegisterRequest {
            username: "wren".into(),
            password: "wren-password".into(),
            password_scheme: PasswordScheme::Plain.into(),
            ..Default::default()
        })
        .await;
    assert!(registered.is_ok(), "register: {registered:?}");

    let idle = futures::future::join_all((0..IDLE).map(|i| {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_ADDRESS) as u8));
        idle_pipe(pipe, source)
    }))
    .await;
    let refused: Vec<_> = idle.iter().filter_map(|c| c.as_ref().err()).collect();
    assert!(
        refused.is_empty(),
        "{} of {IDLE} idle connections not served, e.g. {:?}; log tail:\n{}",
        refused.len(),
        refused.first(),
        tail(&all.log())
    );

    let logged_in = grpc_account(grpc)
        .await
        .login(login("wren", "wren-password"))
        .await;
    assert!(logged_in.is_ok(), "gRPC login: {logged_in:?}");
    let mut other = Ws::connect(ourchat).await;
    let verified = other.call(r#"{"code": 12}"#).await;
    assert!(
        verified.get("code").is_some(),
        "OurChat answers: {verified}"
    );
    drop(idle);
}

fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
