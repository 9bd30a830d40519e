//! Upload and download throughput over loopback gRPC: a files server on SQLite and the local
//! store in this process, a client streaming a generated file in and out.
//!
//! `cargo bench -p rosetta-files --bench transfer` (`BENCH_MB` sets the file size, default 256).

use std::{sync::Arc, time::Instant};

use futures::{StreamExt, stream};
use rosetta_auth::Caller;
use rosetta_db::{
    entity::user,
    sea_orm::{ActiveModelTrait, ActiveValue::Set},
};
use rosetta_files::{Files, FilesGrpc, FilesSettings, StoreSettings, open_store};
use rosetta_proto::files::v1::{
    DownloadRequest, UploadMetadata, UploadRequest, download_response,
    files_service_client::FilesServiceClient, files_service_server::FilesServiceServer,
    upload_request::Part,
};
use tokio::net::TcpListener;
use tonic::{
    Request,
    transport::{Server, server::TcpIncoming},
};

const CHUNK: usize = 256 * 1024;
const ROUNDS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let size = mib * 1024 * 1024;
    let dir = tempfile::tempdir()?;
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = rosetta_db::connect(&db_url).await?;
    let owner = user::ActiveModel {
        username: Set("bench".into()),
        ocid: Set("bench00000".into()),
        email: Set(None),
        phone: Set(None),
        nickname: Set(String::new()),
        avatar: Set(String::new()),
        signature: Set(String::new()),
        gender: Set(0),
        vip: Set(false),
        security_question_id: Set(0),
        security_answer_hash: Set(None),
        created_at_ms: Set(0),
        deleted_at_ms: Set(None),
        ..Default::default()
    }
    .insert(&db)
    .await?;
    let settings = FilesSettings {
        max_file_bytes: u64::MAX,
        quota_bytes: u64::MAX,
        store: StoreSettings::default(),
    };
    let store = open_store(&settings.store, dir.path())?;
    let files = Arc::new(Files::new(db, store, settings));

    // Authentication is not what is measured: every call runs as the bench user.
    let caller = Caller {
        user_id: owner.id,
        session_id: "bench".into(),
    };
    let service =
        FilesServiceServer::with_interceptor(FilesGrpc::new(files), move |mut req: Request<()>| {
            req.extensions_mut().insert(caller.clone());
            Ok(req)
        });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    let mut client = FilesServiceClient::connect(format!("http://{addr}")).await?;

    let block: Vec<u8> = (0..CHUNK).map(|i| (i * 7 + i / 251) as u8).collect();
    println!(
        "file size {mib} MiB, {} KiB messages, {ROUNDS} rounds",
        CHUNK / 1024
    );
    for round in 1..=ROUNDS {
        let head = UploadRequest {
            part: Some(Part::Metadata(UploadMetadata {
                name: format!("bench-{round}.bin"),
                size,
                ..Default::default()
            })),
        };
        let block = block.clone();
        let chunks = (size / CHUNK as u64) as usize;
        let body = stream::iter(0..chunks).map(move |_| UploadRequest {
            part: Some(Part::Chunk(block.clone())),
        });
        let started = Instant::now();
        let info = client
            .upload(stream::once(async { head }).chain(body))
            .await?
            .into_inner();
        let up = started.elapsed();
        assert_eq!(info.size, size);

        let started = Instant::now();
        let mut down = client
            .download(DownloadRequest {
                file_id: info.id.clone(),
                offset: 0,
            })
            .await?
            .into_inner();
        let mut received = 0u64;
        while let Some(message) = down.message().await? {
            if let Some(download_response::Part::Chunk(chunk)) = message.part {
                received += chunk.len() as u64;
            }
        }
        let down_time = started.elapsed();
        assert_eq!(received, size);
        let rate = |secs: f64| mib as f64 / secs;
        println!(
            "round {round}: upload {:.0} MiB/s ({:.2} s), download {:.0} MiB/s ({:.2} s), \
             process VmRSS {} MiB, VmHWM {} MiB",
            rate(up.as_secs_f64()),
            up.as_secs_f64(),
            rate(down_time.as_secs_f64()),
            down_time.as_secs_f64(),
            status_kib("VmRSS") / 1024,
            status_kib("VmHWM") / 1024,
        );
    }
    Ok(())
}

/// A `/proc/self/status` field in KiB (0 where there is no such file).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
