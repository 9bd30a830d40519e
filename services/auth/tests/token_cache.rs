//! The verified-token cache seen from outside, on a whole node: a token served from the cache
//! still stops at its `exp`, and a session revoked by another process is refused within
//! `account.session_cache_secs` although its token is cached.

use std::time::Duration;

use rosetta_db::entity::session;
use rosetta_proto::{Reason, account::v1::GetMyProfileRequest};
use rosetta_testkit::{Backend, TestServer, authed, both_backends};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, sea_query::Expr};
use tokio::time::Instant;
use tonic::Code;

/// How often a test asks again while it waits for the node to change its answer.
const POLL: Duration = Duration::from_millis(50);

/// GetMyProfile with `token`: the reason it was refused for, if it was.
async fn refusal(server: &TestServer, token: &str) -> Option<Reason> {
    let mut account = server.account().await;
    match account
        .get_my_profile(authed(GetMyProfileRequest {}, token))
        .await
    {
        Ok(_) => None,
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status}");
            Some(rosetta_testkit::reason(&status))
        }
    }
}

/// Asks until the token is refused, failing after `within`; the reason and when it came.
async fn until_refused(server: &TestServer, token: &str, within: Duration) -> (Reason, Instant) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(reason) = refusal(server, token).await {
            return (reason, Instant::now());
        }
        assert!(Instant::now() < deadline, "still accepted after {within:?}");
        tokio::time::sleep(POLL).await;
    }
}

async fn revoked_elsewhere(backend: Backend) {
    let cache_secs = 1;
    let server =
        TestServer::start_with(backend, |c| c.account.session_cache_secs = cache_secs).await;
    let login = server.user("gina", "pw-gina").await;
    // Verified once, then served from the cache.
    for _ in 0..3 {
        assert_eq!(refusal(&server, &login.access_token).await, None);
    }
    // Another process ends the session: only the shared database knows.
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("database");
    let revoked_at = Instant::now();
    session::Entity::update_many()
        .col_expr(
            session::Column::RevokedAtMs,
            Expr::value(rosetta_db::now_ms()),
        )
        .filter(session::Column::Id.eq(login.session_id.clone()))
        .exec(&db)
        .await
        .expect("revoke");
    let slack = Duration::from_secs(3);
    let (reason, at) = until_refused(
        &server,
        &login.access_token,
        Duration::from_secs(cache_secs) + slack,
    )
    .await;
    assert_eq!(reason, Reason::SessionRevoked);
    assert!(at - revoked_at <= Duration::from_secs(cache_secs) + slack);
    // And it stays refused.
    assert_eq!(
        refusal(&server, &login.access_token).await,
        Some(Reason::SessionRevoked)
    );
    server.stop().await;
}
both_backends!(revoked_elsewhere, super::revoked_elsewhere);

async fn cached_token_expires(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.account.access_token_ttl_secs = 1).await;
    let login = server.user("hank", "pw-hank").await;
    assert_eq!(refusal(&server, &login.access_token).await, None);
    let (reason, _) = until_refused(&server, &login.access_token, Duration::from_secs(5)).await;
    assert_eq!(reason, Reason::TokenExpired);
    // Not before its time: a token lives through the second of its `exp`.
    let refused_at_ms = rosetta_db::now_ms();
    assert!(
        refused_at_ms >= login.access_expires_at_ms,
        "refused at {refused_at_ms}, expires at {}",
        login.access_expires_at_ms
    );
    server.stop().await;
}
both_backends!(cached_token_expires, super::cached_token_expires);
