//! A flood of password logins (issue 18, item 4): hashing runs on a bounded pool, requests
//! beyond its workers and queue are refused at once with `THROTTLED` + `RetryInfo`, and calls
//! that only pass the token check never wait for it. SQLite and PostgreSQL, over real gRPC.

use futures::{StreamExt as _, stream::FuturesUnordered};
use rosetta_account::HashPool;
use rosetta_proto::Reason;
use rosetta_proto::account::v1::{
    GetMyProfileRequest, LoginRequest, PasswordScheme,
    account_service_client::AccountServiceClient, login_request::Identifier,
};
use rosetta_testkit::{self as support, both_backends};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, Status, transport::Channel};

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

/// `n` concurrent logins: even ones by an unknown user, odd ones by `known` with its password.
fn burst(
    client: &AccountServiceClient<Channel>,
    n: usize,
    known: &str,
) -> FuturesUnordered<impl Future<Output = Result<(), Status>>> {
    (0..n)
        .map(|i| {
            let mut client = client.clone();
            let request = if i.is_multiple_of(2) {
                login(&format!("nobody-{i}"), "guess")
            } else {
                login(known, "right one")
            };
            async move { client.login(request).await.map(drop) }
        })
        .collect()
}

/// A refusal for a full pool: THROTTLED with a RetryInfo, at once.
fn assert_busy(status: &Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status), Reason::Throttled);
    let retry = tonic_types::StatusExt::get_details_retry_info(status).expect("retry info");
    assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()), "{retry:?}");
}

/// The attack as it was found: a burst of concurrent logins against a node whose pool has one
/// worker and one queue place. Before the pool every one was hashed at once (19 MiB each);
/// now the excess is refused, and every answer is a login result or that refusal.
async fn a_login_flood_is_refused_beyond_the_pool(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.account.hash_workers = 1;
        config.account.hash_queue = 1;
    })
    .await;
    server.user("known", "right one").await;
    let client = server.account().await;
    let (mut ok, mut bad, mut busy) = (0, 0, 0);
    let mut answers = burst(&client, 40, "known");
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(()) => ok += 1,
            Err(status) if reason(&status) == Reason::BadCredentials => bad += 1,
            Err(status) => {
                assert_busy(&status);
                busy += 1;
            }
        }
    }
    assert_eq!(ok + bad + busy, 40);
    assert!(busy > 0, "no login refused: ok {ok}, bad {bad}");
    assert!(ok + bad > 0, "every login refused");
    server.stop().await;
}
both_backends!(
    login_flood_is_refused_beyond_the_pool,
    super::a_login_flood_is_refused_beyond_the_pool
);

/// Exact counts with the pool's only worker held by the test: of a burst of 12 logins one
/// takes the queue place and 11 are refused while the worker is still busy (so the refusals
/// cannot have waited for a hash); a token-checked call is answered meanwhile; once the worker
/// is free the queued login completes and the pool admits again.
async fn a_full_pool_refuses_the_excess_and_spares_token_calls(backend: Backend) {
    let pool = HashPool::new(1, 1);
    let server = TestServer::start_with_hash_pool(backend, |_| {}, Some(pool.clone())).await;
    let session = server.user("known", "right one").await;
    let client = server.account().await;

    let (open, held) = support::hold_hash_worker(&pool);

    let mut answers = burst(&client, 12, "known");
    for _ in 0..11 {
        let answer = answers.next().await.expect("an answer");
        assert_busy(&answer.expect_err("refused while the worker is held"));
    }
    let me = client
        .clone()
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .expect("a token-checked call does not wait for the hashing pool");
    assert_eq!(me.into_inner().username, "known");

    open.send(()).expect("worker waits at the gate");
    held.await.expect("held job done");
    match answers.next().await.expect("the queued login") {
        Ok(()) => {}
        Err(status) => assert_eq!(reason(&status), Reason::BadCredentials, "{status:?}"),
    }
    assert!(answers.next().await.is_none());

    client
        .clone()
        .login(login("known", "right one"))
        .await
        .expect("the pool admits again once drained");
    server.stop().await;
}
both_backends!(
    full_pool_refuses_the_excess_and_spares_token_calls,
    super::a_full_pool_refuses_the_excess_and_spares_token_calls
);
