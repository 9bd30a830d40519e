//! Friend-request + accept throughput at the domain level, on a SQLite file (WAL, as a node
//! runs it) or, with `ROSETTA_BENCH_DATABASE_URL`, on any database the URL names (it must be
//! empty: users are inserted).
//!
//! `cargo bench -p rosetta-social --bench friend_requests [-- PAIRS [CONCURRENCY]]`
//! One iteration is a SendFriendRequest from one user and its acceptance by the other: two
//! transactions, each with its checks (blocks, existing friendship, pending either way, limits).

use std::{sync::Arc, time::Instant};

use rosetta_auth::Caller;
use rosetta_db::{entity::user, now_ms};
use rosetta_events::{DiscardEvents, NoPresence};
use rosetta_proto::{
    common::v1::{UserRef, user_ref::Ref},
    social::v1::{
        RespondFriendRequestRequest, SendFriendRequestRequest, respond_friend_request_request,
    },
};
use rosetta_social::Social;
use sea_orm::{ActiveValue::Set, EntityTrait};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let pairs: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let concurrency: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(pairs, concurrency));
}

async fn run(pairs: i64, concurrency: i64) {
    let dir = std::env::temp_dir().join(format!("rosetta-social-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let url = std::env::var("ROSETTA_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let db = rosetta_db::connect(&url).await.expect("database");
    let social = Arc::new(Social::new(
        db.clone(),
        Arc::new(DiscardEvents),
        Arc::new(NoPresence),
    ));
    let mut ids = Vec::with_capacity(usize::try_from(pairs * 2).unwrap_or(0));
    for i in 0..pairs * 2 {
        let row = user::Entity::insert(user::ActiveModel {
            username: Set(format!("bench{i}")),
            ocid: Set(format!("ocb{i}")),
            email: Set(None),
            phone: Set(None),
            nickname: Set(String::new()),
            avatar: Set(String::new()),
            signature: Set(String::new()),
            gender: Set(0),
            vip: Set(false),
            security_question_id: Set(0),
            security_answer_hash: Set(None),
            created_at_ms: Set(now_ms()),
            deleted_at_ms: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&db)
        .await
        .expect("user");
        ids.push(row.id);
    }
    let ids = Arc::new(ids);

    let start = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (social, ids) = (social.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            let mut pair = worker;
            while pair < pairs {
                let idx = usize::try_from(pair * 2).expect("index");
                let (from, to) = (caller(ids[idx]), caller(ids[idx + 1]));
                social
                    .send_friend_request(
                        &from,
                        SendFriendRequestRequest {
                            to: Some(UserRef {
                                r#ref: Some(Ref::Id(to.user_id)),
                            }),
                            note: "bench".into(),
                        },
                    )
                    .await
                    .expect("send");
                social
                    .respond_friend_request(
                        &to,
                        RespondFriendRequestRequest {
                            request: Some(respond_friend_request_request::Request::FromUserId(
                                from.user_id,
                            )),
                            accept: true,
                        },
                    )
                    .await
                    .expect("accept");
                pair += concurrency;
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    let elapsed = start.elapsed();
    let backend = url.split(':').next().unwrap_or("?");
    println!(
        "friend request + accept: {pairs} pairs, {concurrency} concurrent, {backend}: {:.2?} total, \
         {:.0} pairs/s, {:.2} ms/pair",
        elapsed,
        pairs as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / pairs as f64,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn caller(user_id: i64) -> Caller {
    Caller {
        user_id,
        session_id: "bench".into(),
    }
}
