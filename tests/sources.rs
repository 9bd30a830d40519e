//! Per-source limits over real gRPC (issue 18, item 3): one address that floods logins,
//! registrations or code requests is throttled while other sources are served; a bridge
//! holding the bridge key speaks for its client's address; a client that forges the address
//! header without the key is still counted by its real address.

use rosetta_proto::Reason;
use std::{net::IpAddr, time::Duration};

use futures::future::join_all;
use rosetta_proto::{
    account::v1::{
        ExchangeLegacyTokenRequest, LegacyTokenFormat, LoginRequest, PasswordScheme,
        RecoverPasswordRequest, RegisterRequest, SendVerificationCodeRequest, VerificationChannel,
        VerificationPurpose, login_request::Identifier, recover_password_request::Proof,
    },
    common::v1::{UserRef, user_ref::Ref},
    metadata,
};
use rosetta_testkit::{self as support, Backend, TestServer, both_backends, reason};
use tonic::{Code, Request, Status};

const BURST: u32 = 5;

/// A node whose every per-source limit is `BURST` at once and then one a minute.
async fn tight(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.account.source_login_burst = BURST;
        c.account.source_login_per_minute = 1;
        c.account.source_register_burst = BURST;
        c.account.source_register_per_minute = 1;
        c.account.source_code_burst = BURST;
        c.account.source_code_per_minute = 1;
    })
    .await
}

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

fn register(username: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        password: format!("pw-{username}"),
        password_scheme: PasswordScheme::Plain.into(),
        ..Default::default()
    }
}

fn code_for(phone: &str) -> SendVerificationCodeRequest {
    SendVerificationCodeRequest {
        channel: VerificationChannel::Phone.into(),
        target: phone.into(),
        purpose: VerificationPurpose::Register.into(),
    }
}

fn recover(username: &str) -> RecoverPasswordRequest {
    RecoverPasswordRequest {
        user: Some(UserRef {
            r#ref: Some(Ref::Username(username.into())),
        }),
        proof: Some(Proof::VerificationCode("000000".into())),
        new_password: "whatever".into(),
        new_scheme: PasswordScheme::Plain.into(),
    }
}

fn assert_throttled(status: &Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status), Reason::Throttled);
    let retry = tonic_types::StatusExt::get_details_retry_info(status).expect("retry info");
    assert!(retry.retry_delay.expect("delay") >= Duration::from_secs(1));
}

/// Of `results`, how many the per-source limit refused; every other one must be `allowed`.
fn throttled_count<T>(results: &[Result<T, Status>], allowed: &[Reason]) -> usize {
    let mut throttled = 0;
    for result in results {
        match result {
            Err(status) if reason(status) == Reason::Throttled => {
                assert_throttled(status);
                throttled += 1;
            }
            Err(status) => assert!(allowed.contains(&reason(status)), "{status:?}"),
            Ok(_) => {}
        }
    }
    throttled
}

/// 30 logins at once from one address: exactly the burst is checked, the rest THROTTLED; a
/// bridge speaking for another client address still logs a user in, and so does the user's
/// legacy-token exchange through it, while the flooded address cannot exchange.
async fn login_flood(backend: Backend) {
    let server = tight(backend).await;
    let bridge = server.backend();
    bridge.account().register(register("alice")).await.unwrap();
    let account = server.account().await;
    let flood = (0..30).map(|i| {
        let mut account = account.clone();
        async move { account.login(login(&format!("user{i}"), "guess")).await }
    });
    let results = join_all(flood).await;
    assert_eq!(
        throttled_count(&results, &[Reason::BadCredentials]),
        30 - BURST as usize,
        "only the burst gets a password check"
    );
    let mut account = account.clone();
    assert_throttled(&account.login(login("alice", "pw-alice")).await.unwrap_err());

    let other = bridge.for_client(IpAddr::from([192, 0, 2, 10]));
    let session = other
        .login(login("alice", "pw-alice"))
        .await
        .expect("other source")
        .into_inner();
    let token = other
        .account()
        .issue_legacy_token(support::authed(
            rosetta_proto::account::v1::IssueLegacyTokenRequest {
                protocol: "pipe".into(),
                format: LegacyTokenFormat::Alnum16.into(),
            },
            &session.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let exchange = ExchangeLegacyTokenRequest {
        protocol: "pipe".into(),
        user: Some(UserRef {
            r#ref: Some(Ref::Username("alice".into())),
        }),
        token,
        rotate: false,
        format: LegacyTokenFormat::Alnum16.into(),
        client: "test".into(),
    };
    other
        .exchange_legacy_token(exchange.clone())
        .await
        .expect("exchange from another source");
    assert_throttled(&account.exchange_legacy_token(exchange).await.unwrap_err());
    server.stop().await;
}
both_backends!(login_flood, super::login_flood);

/// Registrations and code requests (sending codes and recovering with them) each have a
/// budget per address.
async fn register_and_code_flood(backend: Backend) {
    let server = tight(backend).await;
    let account = server.account().await;
    let registrations = join_all((0..12).map(|i| {
        let mut account = account.clone();
        async move { account.register(register(&format!("bulk{i}"))).await }
    }))
    .await;
    assert_eq!(throttled_count(&registrations, &[]), 12 - BURST as usize);

    let codes = join_all((0..8).map(|i| {
        let mut account = account.clone();
        async move {
            account
                .send_verification_code(code_for(&format!("1390013900{i}")))
                .await
        }
    }))
    .await;
    assert_eq!(throttled_count(&codes, &[]), 8 - BURST as usize);
    // Recovery spends from the same budget: a code guess is a code request.
    let mut account = account.clone();
    assert_throttled(
        &account
            .recover_password(recover("bulk0"))
            .await
            .unwrap_err(),
    );

    let other = server.backend().for_client("2001:db8::7".parse().unwrap());
    other
        .account()
        .register(register("newcomer"))
        .await
        .expect("another source registers");
    other
        .account()
        .send_verification_code(code_for("13900139099"))
        .await
        .expect("another source gets a code");
    let refused = other
        .account()
        .recover_password(recover("newcomer"))
        .await
        .unwrap_err();
    assert_ne!(reason(&refused), Reason::Throttled, "{refused:?}");
    server.stop().await;
}
both_backends!(register_and_code_flood, super::register_and_code_flood);

/// `request` claiming to come from `addr`, with `key` as the bridge key if given.
fn forged<T>(message: T, addr: &str, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(metadata::CLIENT_ADDR, addr.parse().unwrap());
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert(metadata::BRIDGE_KEY, key.parse().unwrap());
    }
    request
}

/// A client that sets the client-address header itself, with no key or a wrong one, is
/// counted by its real address: a fresh made-up address per call buys nothing.
async fn forged_client_address(backend: Backend) {
    let server = tight(backend).await;
    let mut account = server.account().await;
    let wrong_key = "00".repeat(32);
    let mut throttled = 0;
    for i in 0..(2 * BURST) {
        let addr = format!("198.51.100.{i}");
        let key = (i % 2 == 1).then_some(wrong_key.as_str());
        match account
            .login(forged(login(&format!("nobody{i}"), "guess"), &addr, key))
            .await
        {
            Err(status) if reason(&status) == Reason::Throttled => {
                assert_throttled(&status);
                throttled += 1;
            }
            Err(status) => assert_eq!(reason(&status), Reason::BadCredentials, "{status:?}"),
            Ok(_) => panic!("nobody logged in"),
        }
    }
    assert_eq!(
        throttled, BURST,
        "forged addresses share the real one's budget"
    );

    // With the real key the header is honoured: that is what bridges do.
    let key = rosetta_node::node::bridge_key(&server.config, false)
        .unwrap()
        .unwrap();
    let status = account
        .login(forged(
            login("nobody-else", "guess"),
            "198.51.100.200",
            Some(&key.to_hex()),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), Reason::BadCredentials, "{status:?}");
    server.stop().await;
}
both_backends!(forged_client_address, super::forged_client_address);
