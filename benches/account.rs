//! Account hot paths over real gRPC on loopback: password login latency (dominated by argon2id)
//! and the throughput of calls that only pass the token check.
//!
//! `cargo bench --bench account` (release build). Prints a small table; not run by the tests.

use std::{sync::Arc, time::Instant};

use rosetta_node::{Config, Node, Role, node::Plugins};
use rosetta_proto::account::v1::{
    GetMyProfileRequest, LoginRequest, RegisterRequest,
    account_service_client::AccountServiceClient, login_request::Identifier,
};
use tokio::net::TcpListener;
use tonic::{Request, transport::Channel};

const LOGINS: usize = 30;
const CALLS: usize = 20_000;
const CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let node = Node::build(&config, Role::All, Plugins::default()).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(node.serve(listener, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut account = AccountServiceClient::new(channel.clone());
    account
        .register(RegisterRequest {
            username: "bench".into(),
            password: "bench-password".into(),
            ..Default::default()
        })
        .await?;

    let login = || LoginRequest {
        identifier: Some(Identifier::Username("bench".into())),
        password: "bench-password".into(),
        ..Default::default()
    };
    let mut latencies = Vec::with_capacity(LOGINS);
    let mut token = String::new();
    for _ in 0..LOGINS {
        let start = Instant::now();
        token = account.login(login()).await?.into_inner().access_token;
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);

    let token = Arc::new(token);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (channel, token) = (channel.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = AccountServiceClient::new(channel);
            for _ in 0..CALLS / CONCURRENCY {
                let mut request = Request::new(GetMyProfileRequest {});
                request
                    .metadata_mut()
                    .insert("authorization", rosetta_auth::bearer(&token)?);
                client.get_my_profile(request).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed();
    let calls = (CALLS / CONCURRENCY) * CONCURRENCY;

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| password login p50 ({LOGINS} sequential) | {:.1} ms |",
        latencies[LOGINS / 2]
    );
    println!("| password login max | {:.1} ms |", latencies[LOGINS - 1]);
    println!(
        "| token-checked GetMyProfile ({CONCURRENCY} concurrent, {calls} calls) | {:.0} calls/s |",
        calls as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
