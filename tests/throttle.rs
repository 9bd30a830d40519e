//! Throttles under concurrency, over real gRPC on SQLite and PostgreSQL: guesses sent at once
//! get no more checks than guesses sent one after another, and a locked account answers
//! exactly like a missing one.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use futures::future::join_all;
use rosetta_proto::{
    account::v1::{
        LoginRequest, PasswordScheme, RecoverPasswordRequest, RegisterRequest,
        SendVerificationCodeRequest, VerificationChannel, VerificationPurpose,
        account_service_client::AccountServiceClient, login_request::Identifier,
        recover_password_request::Proof,
    },
    common::v1::{UserRef, user_ref::Ref},
};
use support::{Backend, TestServer, reason};
use tonic::transport::Channel;

/// Guesses in one burst, as in the attack that found the hole.
const BURST: usize = 300;
/// The default lock-out threshold and the attempts a verification code allows.
const THRESHOLD: usize = 5;

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

/// The reason of every answer (`None` for a success), counted.
fn tally(
    results: Vec<Result<(), tonic::Status>>,
) -> std::collections::HashMap<Option<Reason>, usize> {
    let mut counts = std::collections::HashMap::new();
    for result in results {
        let key = match result {
            Ok(()) => None,
            Err(status) => Some(reason(&status)),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Sends `n` requests at once, each on its own client clone (one HTTP/2 connection).
async fn burst<F, Fut>(
    account: &AccountServiceClient<Channel>,
    n: usize,
    call: F,
) -> std::collections::HashMap<Option<Reason>, usize>
where
    F: Fn(AccountServiceClient<Channel>, usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    tally(join_all((0..n).map(|i| call(account.clone(), i))).await)
}

/// 300 wrong passwords at once: at most `THRESHOLD` are checked, the rest are refused
/// unchecked, and the right password is refused while the lock lasts.
async fn concurrent_wrong_passwords(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("victim", "right-password").await;
    let account = server.account().await;
    let counts = burst(&account, BURST, |mut a, i| async move {
        a.login(login("victim", &format!("guess-{i}")))
            .await
            .map(drop)
    })
    .await;
    let checked = counts
        .get(&Some(Reason::BadCredentials))
        .copied()
        .unwrap_or(0);
    assert!(
        (1..=THRESHOLD).contains(&checked),
        "at most {THRESHOLD} guesses checked: {counts:?}"
    );
    assert_eq!(
        counts.get(&Some(Reason::Throttled)).copied().unwrap_or(0),
        BURST - checked,
        "every other guess is refused unchecked: {counts:?}"
    );
    let right = account
        .clone()
        .login(login("victim", "right-password"))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&right),
        Reason::Throttled,
        "locked even for the right one"
    );
    server.stop().await;
}
both_backends!(
    concurrent_wrong_passwords,
    super::concurrent_wrong_passwords
);

fn recover(username: &str, code: &str) -> RecoverPasswordRequest {
    RecoverPasswordRequest {
        user: Some(UserRef {
            r#ref: Some(Ref::Username(username.into())),
        }),
        proof: Some(Proof::VerificationCode(code.into())),
        new_password: "taken-over".into(),
        new_scheme: PasswordScheme::Plain.into(),
    }
}

/// Registers `username` with an e-mail address and has a recovery code sent to it.
async fn with_recovery_code(server: &TestServer, username: &str) -> (String, String) {
    let mut account = server.account().await;
    let email = format!("{username}@example.com");
    account
        .register(RegisterRequest {
            username: username.into(),
            password: "old-password".into(),
            password_scheme: PasswordScheme::Plain.into(),
            email: email.clone(),
            ..Default::default()
        })
        .await
        .expect("register");
    account
        .send_verification_code(SendVerificationCodeRequest {
            channel: VerificationChannel::Email.into(),
            target: email.clone(),
            purpose: VerificationPurpose::Recovery.into(),
        })
        .await
        .expect("code sent");
    let code = server.codes.last_code(&email).expect("code delivered");
    (email, code)
}

/// A code that is not `code`, for guess number `i`.
fn wrong_code(code: &str, i: usize) -> String {
    let guess = format!("{:06}", i % 1_000_000);
    if guess == code {
        format!("{:06}", (i + 1) % 1_000_000)
    } else {
        guess
    }
}

/// Concurrent recovery guesses: at most `THRESHOLD` proofs are checked, and the right code
/// does not work after them.
async fn concurrent_recovery_guesses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, code) = with_recovery_code(&server, "victim").await;
    let account = server.account().await;
    let guess_code = code.clone();
    let counts = burst(&account, BURST, move |mut a, i| {
        let guess = wrong_code(&guess_code, i);
        async move {
            a.recover_password(recover("victim", &guess))
                .await
                .map(drop)
        }
    })
    .await;
    let checked = counts.get(&Some(Reason::BadProof)).copied().unwrap_or(0);
    assert!(
        (1..=THRESHOLD).contains(&checked),
        "at most {THRESHOLD} proofs checked: {counts:?}"
    );
    assert_eq!(
        counts.get(&Some(Reason::Throttled)).copied().unwrap_or(0),
        BURST - checked,
        "{counts:?}"
    );
    let right = account
        .clone()
        .recover_password(recover("victim", &code))
        .await
        .unwrap_err();
    assert_eq!(reason(&right), Reason::Throttled);
    server.stop().await;
}
both_backends!(
    concurrent_recovery_guesses,
    super::concurrent_recovery_guesses
);

/// A verification code allows `THRESHOLD` guesses even when they arrive at once and the
/// recovery lock-out would allow more: the right code is void after them.
async fn concurrent_code_guesses_on_recovery(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.account.lockout_threshold = 10_000).await;
    let (_, code) = with_recovery_code(&server, "victim").await;
    let account = server.account().await;
    let guess_code = code.clone();
    let counts = burst(&account, BURST, move |mut a, i| {
        let guess = wrong_code(&guess_code, i);
        async move {
            a.recover_password(recover("victim", &guess))
                .await
                .map(drop)
        }
    })
    .await;
    assert_eq!(
        counts.get(&Some(Reason::BadProof)),
        Some(&BURST),
        "{counts:?}"
    );
    let right = account
        .clone()
        .recover_password(recover("victim", &code))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&right),
        Reason::BadProof,
        "the code is void after its guesses"
    );
    server.stop().await;
}
both_backends!(
    concurrent_code_guesses_on_recovery,
    super::concurrent_code_guesses_on_recovery
);

/// Registration codes: at most `THRESHOLD` guesses are compared, and the right code is void
/// after them.
async fn concurrent_registration_code_guesses(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.account.require_phone_code = true).await;
    let phone = "13900139077";
    let account = server.account().await;
    account
        .clone()
        .send_verification_code(SendVerificationCodeRequest {
            channel: VerificationChannel::Phone.into(),
            target: phone.into(),
            purpose: VerificationPurpose::Register.into(),
        })
        .await
        .expect("code sent");
    let code = server.codes.last_code(phone).expect("code delivered");
    let register = |code: &str| RegisterRequest {
        username: "newcomer".into(),
        password: "pw".into(),
        password_scheme: PasswordScheme::Plain.into(),
        phone: phone.into(),
        verification_code: code.into(),
        ..Default::default()
    };
    let guess_code = code.clone();
    let counts = burst(&account, BURST, |mut a, i| {
        let request = register(&wrong_code(&guess_code, i));
        async move { a.register(request).await.map(drop) }
    })
    .await;
    assert_eq!(
        counts.get(&Some(Reason::CodeInvalid)),
        Some(&BURST),
        "{counts:?}"
    );
    let right = account.clone().register(register(&code)).await.unwrap_err();
    assert_eq!(
        reason(&right),
        Reason::CodeInvalid,
        "void after its guesses"
    );
    server.stop().await;
}
both_backends!(
    concurrent_registration_code_guesses,
    super::concurrent_registration_code_guesses
);

/// After the threshold, an existing account and a missing one answer alike: THROTTLED.
async fn locked_and_missing_accounts_answer_alike(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("exists", "right-password").await;
    let mut account = server.account().await;
    for name in ["exists", "missing"] {
        for i in 0..THRESHOLD {
            let err = account
                .login(login(name, &format!("guess-{i}")))
                .await
                .unwrap_err();
            assert_eq!(reason(&err), Reason::BadCredentials, "{name} guess {i}");
        }
    }
    for name in ["exists", "missing"] {
        let err = account.login(login(name, "again")).await.unwrap_err();
        assert_eq!(
            reason(&err),
            Reason::Throttled,
            "{name} after the threshold"
        );
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        let retry = tonic_types::StatusExt::get_details_retry_info(&err).expect("retry info");
        assert!(retry.retry_delay.is_some());
    }
    server.stop().await;
}
both_backends!(
    locked_and_missing_accounts_answer_alike,
    super::locked_and_missing_accounts_answer_alike
);

/// A recovery code for an address nobody has is answered like one for a registered
/// address, and nothing is sent.
async fn recovery_code_for_unknown_address(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, _) = with_recovery_code(&server, "known").await;
    let mut account = server.account().await;
    let send = |target: &str| SendVerificationCodeRequest {
        channel: VerificationChannel::Email.into(),
        target: target.into(),
        purpose: VerificationPurpose::Recovery.into(),
    };
    let unknown = account
        .send_verification_code(send("nobody@example.com"))
        .await
        .expect("answered like a known address")
        .into_inner();
    let known = account
        .send_verification_code(send("known@example.com"))
        .await
        .expect("known address")
        .into_inner();
    let ttl = |expires_at_ms: i64| expires_at_ms - rosetta_db::now_ms();
    let (unknown_ttl, known_ttl) = (ttl(unknown.expires_at_ms), ttl(known.expires_at_ms));
    assert!(
        (unknown_ttl - known_ttl).abs() < 60_000 && unknown_ttl > 0,
        "same expiry: {unknown:?} vs {known:?}"
    );
    assert_eq!(
        server.codes.last_code("nobody@example.com"),
        None,
        "nothing sent"
    );
    server.stop().await;
}
both_backends!(
    recovery_code_for_unknown_address,
    super::recovery_code_for_unknown_address
);

/// Counters are bounded: one untouched for longer than the forget window (here two hours;
/// the window is max(1 h, 2 × lockout_max)) is deleted, a recent or locked one stays.
async fn old_counters_are_forgotten(backend: Backend) {
    use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, EntityTrait as _};
    let server = TestServer::start(backend).await;
    let db = rosetta_db::connect(&server.config.database_url())
        .await
        .expect("test connects to the node's database");
    let now = rosetta_db::now_ms();
    let hours = |h: i64| h * 3_600_000;
    for (key, updated_at_ms, locked_until_ms) in [
        ("login:?stale", now - hours(2), 0),
        ("login:?recent", now - 60_000, 0),
        ("login:?stale-but-locked", now - hours(2), now + 60_000),
    ] {
        rosetta_db::entity::throttle::ActiveModel {
            key: Set(key.into()),
            failures: Set(3),
            locked_until_ms: Set(locked_until_ms),
            updated_at_ms: Set(updated_at_ms),
        }
        .insert(&db)
        .await
        .expect("counter stored");
    }
    // Any throttled attempt runs the sweep (at most once a minute per instance).
    server.user("someone", "pw").await;
    let left: Vec<String> = rosetta_db::entity::throttle::Entity::find()
        .all(&db)
        .await
        .expect("counters")
        .into_iter()
        .map(|row| row.key)
        .collect();
    assert!(!left.contains(&"login:?stale".to_owned()), "{left:?}");
    assert!(left.contains(&"login:?recent".to_owned()), "{left:?}");
    assert!(
        left.contains(&"login:?stale-but-locked".to_owned()),
        "{left:?}"
    );
    server.stop().await;
}
both_backends!(
    old_counters_are_forgotten,
    super::old_counters_are_forgotten
);
