//! The account service end to end over real gRPC, on SQLite and on PostgreSQL.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use std::time::Duration;

use rosetta_proto::{
    account::v1::{
        ChangePasswordRequest, DeleteAccountRequest, ExchangeLegacyTokenRequest,
        GetMyProfileRequest, GetProfilesRequest, IssueLegacyTokenRequest, LegacyTokenFormat,
        LoginRequest, LogoutRequest, PasswordScheme, RecoverPasswordRequest, RefreshRequest,
        RegisterRequest, SearchUsersRequest, SecurityAnswer, SendVerificationCodeRequest,
        UpdateProfileRequest, VerificationChannel, VerificationPurpose, login_request::Identifier,
        recover_password_request::Proof, search_users_request::Query,
    },
    common::v1::{UserRef, user_ref::Ref},
};
use support::{Backend, TestServer, authed, reason};
use tonic::Code;

const MD5_123456: &str = "e10adc3949ba59abbe56e057f20f883e";
const SHA256_123456: &str = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";

fn login(username: &str, password: &str, scheme: PasswordScheme) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: scheme.into(),
        client: "test".into(),
    }
}

fn register(username: &str, password: &str, scheme: PasswordScheme) -> RegisterRequest {
    RegisterRequest {
        username: username.into(),
        password: password.into(),
        password_scheme: scheme.into(),
        ..Default::default()
    }
}

async fn register_login_and_profile(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = server.user("alice", "correct horse").await;
    assert!(
        session.user.as_ref().unwrap().id >= 100,
        "user ids start at 100"
    );
    let mut account = server.account().await;
    let me = account
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "alice");
    assert_eq!(me.nickname, "ALICE");
    assert_eq!(me.ocid.len(), 10);

    let dup = account
        .register(register("alice", "x", PasswordScheme::Plain))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(reason(&dup), Reason::UsernameTaken);

    let wrong = account
        .login(login("alice", "wrong", PasswordScheme::Plain))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), Reason::BadCredentials);
    let nobody = account
        .login(login("nobody", "wrong", PasswordScheme::Plain))
        .await
        .unwrap_err();
    assert_eq!(
        reason(&nobody),
        Reason::BadCredentials,
        "unknown users look like wrong passwords"
    );

    // Every other handle logs in too.
    let ocid = me.ocid.clone();
    for identifier in [Identifier::UserId(me.id), Identifier::Ocid(ocid)] {
        let req = LoginRequest {
            identifier: Some(identifier),
            password: "correct horse".into(),
            password_scheme: PasswordScheme::Plain.into(),
            client: String::new(),
        };
        account.login(req).await.unwrap();
    }
    let no_token = account
        .get_my_profile(GetMyProfileRequest {})
        .await
        .unwrap_err();
    assert_eq!(no_token.code(), Code::Unauthenticated);
    assert_eq!(reason(&no_token), Reason::TokenMissing);
    server.stop().await;
}
both_backends!(
    register_login_and_profile,
    super::register_login_and_profile
);

/// Five failures lock the account (even against the right password); recovery still works.
async fn throttling(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.user("bob", "right-password").await;
    let mut account = server.account().await;
    for _ in 0..5 {
        let err = account
            .login(login("bob", "guess", PasswordScheme::Plain))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Reason::BadCredentials);
    }
    let locked = account
        .login(login("bob", "right-password", PasswordScheme::Plain))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&locked), Reason::Throttled);
    let retry = tonic_types::StatusExt::get_details_retry_info(&locked).expect("retry info");
    assert!(retry.retry_delay.unwrap() > Duration::ZERO);

    // The lock does not block recovery by security question; recovery clears it.
    let mut req = register("carol", "pw-carol", PasswordScheme::Plain);
    req.security_question_id = 2;
    req.security_answer = "Rex".into();
    account.register(req).await.unwrap();
    for _ in 0..6 {
        let _ = account
            .login(login("carol", "nope", PasswordScheme::Plain))
            .await;
    }
    let recover = |answer: &str| RecoverPasswordRequest {
        user: Some(UserRef {
            r#ref: Some(Ref::Username("carol".into())),
        }),
        proof: Some(Proof::SecurityAnswer(SecurityAnswer {
            question_id: 2,
            answer: answer.into(),
        })),
        new_password: "new-carol".into(),
        new_scheme: PasswordScheme::Plain.into(),
    };
    let bad = account.recover_password(recover("Max")).await.unwrap_err();
    assert_eq!(reason(&bad), Reason::BadProof);
    account.recover_password(recover("Rex")).await.unwrap();
    account
        .login(login("carol", "new-carol", PasswordScheme::Plain))
        .await
        .unwrap();
    server.stop().await;
}
both_backends!(throttling, super::throttling);

async fn token_expiry(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.account.access_token_ttl_secs = 1).await;
    let session = server.user("dave", "pw-dave").await;
    let mut account = server.account().await;
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = account
        .get_my_profile(authed(GetMyProfileRequest {}, &session.access_token))
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert_eq!(reason(&expired), Reason::TokenExpired);
    // The refresh token still gives a working access token.
    let fresh = account
        .refresh(RefreshRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap()
        .into_inner();
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &fresh.access_token))
        .await
        .unwrap();
    server.stop().await;
}
both_backends!(token_expiry, super::token_expiry);

/// A spent refresh token is refused, and presenting it revokes the whole session.
async fn refresh_rotation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = server.user("erin", "pw-erin").await;
    let mut account = server.account().await;
    let second = account
        .refresh(RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.session_id, first.session_id);

    let replay = account
        .refresh(RefreshRequest {
            refresh_token: first.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert_eq!(reason(&replay), Reason::RefreshReused);
    // The reuse ended the session: the newest tokens are dead too.
    let after = account
        .refresh(RefreshRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&after), Reason::SessionRevoked);
    let call = account
        .get_my_profile(authed(GetMyProfileRequest {}, &second.access_token))
        .await
        .unwrap_err();
    assert_eq!(reason(&call), Reason::SessionRevoked);
    let garbage = account
        .refresh(RefreshRequest {
            refresh_token: "nonsense".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&garbage), Reason::TokenInvalid);
    server.stop().await;
}
both_backends!(refresh_rotation, super::refresh_rotation);

async fn logout_revokes_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = server.user("frank", "pw-frank").await;
    let mut account = server.account().await;
    let laptop = account
        .login(login("frank", "pw-frank", PasswordScheme::Plain))
        .await
        .unwrap()
        .into_inner();
    account
        .logout(authed(LogoutRequest {}, &phone.access_token))
        .await
        .unwrap();

    let revoked = account
        .get_my_profile(authed(GetMyProfileRequest {}, &phone.access_token))
        .await
        .unwrap_err();
    assert_eq!(reason(&revoked), Reason::SessionRevoked);
    let refresh = account
        .refresh(RefreshRequest {
            refresh_token: phone.refresh_token,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refresh), Reason::SessionRevoked);
    // Other sessions live on.
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &laptop.access_token))
        .await
        .unwrap();
    server.stop().await;
}
both_backends!(logout_revokes_session, super::logout_revokes_session);

/// Registered through one protocol's password form, logged in through every other where the
/// digests allow it.
async fn cross_scheme_matrix(backend: Backend) {
    use PasswordScheme::{Md5Hex, Plain, Sha256Hex};
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let form = |scheme| match scheme {
        Plain => "123456",
        Md5Hex => MD5_123456,
        Sha256Hex => SHA256_123456,
        PasswordScheme::Unspecified => unreachable!(),
    };
    // (registered with, logs in with, works before any plain login)
    let matrix = [
        (Plain, Plain, true),
        (Plain, Md5Hex, true),
        (Plain, Sha256Hex, true),
        (Md5Hex, Plain, true),
        (Md5Hex, Md5Hex, true),
        (Md5Hex, Sha256Hex, false),
        (Sha256Hex, Plain, true),
        (Sha256Hex, Sha256Hex, true),
        (Sha256Hex, Md5Hex, false),
    ];
    for (i, (reg, log, works)) in matrix.into_iter().enumerate() {
        let name = format!("cross{i}");
        account
            .register(register(&name, form(reg), reg))
            .await
            .unwrap();
        let result = account.login(login(&name, form(log), log)).await;
        assert_eq!(
            result.is_ok(),
            works,
            "registered {reg:?}, login {log:?}: {result:?}"
        );
    }
    // After one plain login, a digest-registered account works in every form.
    for (i, digest) in [(5, Md5Hex), (8, Sha256Hex)] {
        let name = format!("cross{i}");
        account.login(login(&name, "123456", Plain)).await.unwrap();
        let other = if digest == Md5Hex { Sha256Hex } else { Md5Hex };
        account
            .login(login(&name, form(other), other))
            .await
            .unwrap();
    }
    // Uppercase hex is the same digest.
    account
        .login(login("cross0", &MD5_123456.to_uppercase(), Md5Hex))
        .await
        .unwrap();
    let malformed = account
        .login(login("cross0", "not-hex", Md5Hex))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    server.stop().await;
}
both_backends!(cross_scheme_matrix, super::cross_scheme_matrix);

/// Identity comes from the token alone: nothing in a request lets one user act for another.
async fn no_acting_for_others(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let mut req = register("grace", "pw-grace", PasswordScheme::Plain);
    req.email = "Grace@Example.com".into();
    req.phone = "13800138000".into();
    req.nickname = "GRACE".into();
    account.register(req).await.unwrap();
    let grace = account
        .login(login("grace", "pw-grace", PasswordScheme::Plain))
        .await
        .unwrap()
        .into_inner();
    let heidi = server.user("heidi", "pw-heidi").await;
    let grace_id = grace.user.unwrap().id;

    // Heidi's token only ever reaches Heidi's account.
    let me = account
        .get_my_profile(authed(GetMyProfileRequest {}, &heidi.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "heidi");
    let update = UpdateProfileRequest {
        nickname: Some("hacked".into()),
        ..Default::default()
    };
    account
        .update_profile(authed(update, &heidi.access_token))
        .await
        .unwrap();
    let public = account
        .get_profiles(authed(
            GetProfilesRequest {
                user_ids: vec![grace_id],
            },
            &heidi.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(public[0].nickname, "GRACE");
    assert!(
        public[0].email.is_empty() && public[0].phone.is_empty(),
        "private fields stay private"
    );

    // A legacy token issued to Heidi does not open Grace's account.
    let heidi_legacy = account
        .issue_legacy_token(authed(
            IssueLegacyTokenRequest {
                protocol: "pipe".into(),
                format: LegacyTokenFormat::Alnum16.into(),
            },
            &heidi.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    let forged = ExchangeLegacyTokenRequest {
        protocol: "pipe".into(),
        user: Some(UserRef {
            r#ref: Some(Ref::Id(grace_id)),
        }),
        token: heidi_legacy,
        ..Default::default()
    };
    assert_eq!(
        reason(&account.exchange_legacy_token(forged).await.unwrap_err()),
        Reason::BadCredentials
    );

    // A forged token is refused.
    let err = account
        .get_my_profile(authed(GetMyProfileRequest {}, "eyJhbGciOiJub25lIn0.e30."))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::TokenInvalid);
    server.stop().await;
}
both_backends!(no_acting_for_others, super::no_acting_for_others);

/// Legacy tokens: issued with the protocol's shape, exchanged for a session, rotated, and gone
/// with the session that issued them.
async fn legacy_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ivan = server.user("ivan", "pw-ivan").await;
    let mut account = server.account().await;
    let issue = |format: LegacyTokenFormat, protocol: &str| {
        authed(
            IssueLegacyTokenRequest {
                protocol: protocol.into(),
                format: format.into(),
            },
            &ivan.access_token,
        )
    };
    let pipe = account
        .issue_legacy_token(issue(LegacyTokenFormat::Alnum16, "pipe"))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert_eq!(pipe.len(), 16);
    let cloud = account
        .issue_legacy_token(issue(LegacyTokenFormat::Printable, "cloudchat"))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert!((15..=19).contains(&cloud.len()));

    let exchange = |token: &str, rotate: bool| ExchangeLegacyTokenRequest {
        protocol: "cloudchat".into(),
        user: Some(UserRef {
            r#ref: Some(Ref::Username("ivan".into())),
        }),
        token: token.into(),
        rotate,
        format: LegacyTokenFormat::Printable.into(),
        client: "cloudchat".into(),
    };
    let rotated = account
        .exchange_legacy_token(exchange(&cloud, true))
        .await
        .unwrap()
        .into_inner();
    assert!(!rotated.legacy_token.is_empty() && rotated.legacy_token != cloud);
    assert_eq!(
        reason(
            &account
                .exchange_legacy_token(exchange(&cloud, false))
                .await
                .unwrap_err()
        ),
        Reason::BadCredentials
    );
    account
        .exchange_legacy_token(exchange(&rotated.legacy_token, false))
        .await
        .unwrap();

    // Logging out the session that issued the pipe token voids it.
    account
        .logout(authed(LogoutRequest {}, &ivan.access_token))
        .await
        .unwrap();
    let pipe_exchange = ExchangeLegacyTokenRequest {
        protocol: "pipe".into(),
        user: Some(UserRef {
            r#ref: Some(Ref::Username("ivan".into())),
        }),
        token: pipe,
        ..Default::default()
    };
    assert_eq!(
        reason(
            &account
                .exchange_legacy_token(pipe_exchange)
                .await
                .unwrap_err()
        ),
        Reason::BadCredentials
    );
    server.stop().await;
}
both_backends!(legacy_tokens, super::legacy_tokens);

/// A test rig without an SMS gateway sets a fixed code: every code sent is that value, and
/// it is spent like any other.
async fn fixed_verification_code(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.account.require_phone_code = true;
        c.account.fixed_verification_code = "246810".into();
    })
    .await;
    let mut account = server.account().await;
    for (name, phone) in [("kim", "13900139010"), ("lee", "13900139011")] {
        account
            .send_verification_code(SendVerificationCodeRequest {
                channel: VerificationChannel::Phone.into(),
                target: phone.into(),
                purpose: VerificationPurpose::Register.into(),
            })
            .await
            .expect("code sent");
        assert_eq!(server.codes.last_code(phone).as_deref(), Some("246810"));
        let register = |code: &str| RegisterRequest {
            phone: phone.into(),
            verification_code: code.into(),
            ..register(name, "pw", PasswordScheme::Plain)
        };
        let wrong = account.register(register("135791")).await.unwrap_err();
        assert_eq!(reason(&wrong), Reason::CodeInvalid);
        account
            .register(register("246810"))
            .await
            .expect("registered with the fixed code");
    }
    server.stop().await;
}
both_backends!(fixed_verification_code, super::fixed_verification_code);

/// Verification codes per phone: required shape, wrong code, code for another phone, taken
/// phone, and recovery by code.
async fn verification_codes(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.account.require_phone_code = true).await;
    let mut account = server.account().await;
    let send = |phone: &str, purpose: VerificationPurpose| SendVerificationCodeRequest {
        channel: VerificationChannel::Phone.into(),
        target: phone.into(),
        purpose: purpose.into(),
    };
    let with_phone = |code: &str, phone: &str| RegisterRequest {
        phone: phone.into(),
        verification_code: code.into(),
        ..register("judy", "pw-judy", PasswordScheme::Plain)
    };
    let none = account
        .register(with_phone("", "13900139000"))
        .await
        .unwrap_err();
    assert_eq!(reason(&none), Reason::CodeRequired);
    let unrequested = account
        .register(with_phone("1234", "13900139000"))
        .await
        .unwrap_err();
    assert_eq!(reason(&unrequested), Reason::CodeNotRequested);

    account
        .send_verification_code(send("13900139000", VerificationPurpose::Register))
        .await
        .unwrap();
    let code = server.codes.last_code("13900139000").expect("code sent");
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        reason(
            &account
                .register(with_phone(wrong, "13900139000"))
                .await
                .unwrap_err()
        ),
        Reason::CodeInvalid
    );
    account
        .register(with_phone(&code, "13900139000"))
        .await
        .unwrap();
    // Spent.
    let again = account.register(RegisterRequest {
        username: "judy2".into(),
        ..with_phone(&code, "13900139001")
    });
    assert_eq!(reason(&again.await.unwrap_err()), Reason::CodeNotRequested);

    let taken = account
        .send_verification_code(send("13900139000", VerificationPurpose::Register))
        .await
        .unwrap_err();
    assert_eq!(reason(&taken), Reason::PhoneTaken);
    let bad = account
        .send_verification_code(send("call me", VerificationPurpose::Register))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    account
        .send_verification_code(send("13900139000", VerificationPurpose::Recovery))
        .await
        .unwrap();
    let code = server.codes.last_code("13900139000").unwrap();
    account
        .recover_password(RecoverPasswordRequest {
            user: Some(UserRef {
                r#ref: Some(Ref::Username("judy".into())),
            }),
            proof: Some(Proof::VerificationCode(code)),
            new_password: "judy-new".into(),
            new_scheme: PasswordScheme::Plain.into(),
        })
        .await
        .unwrap();
    account
        .login(login("judy", "judy-new", PasswordScheme::Plain))
        .await
        .unwrap();
    server.stop().await;
}
both_backends!(verification_codes, super::verification_codes);

async fn profile_search_password_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ken = server.user("ken", "pw-ken").await;
    server.user("kenneth", "pw-kenneth").await;
    server.user("laura", "pw-laura").await;
    let mut account = server.account().await;
    let token = ken.access_token.clone();

    let by_name = account
        .search_users(authed(
            SearchUsersRequest {
                query: Some(Query::Name("KEN".into())),
                page: None,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = by_name.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["ken", "kenneth"]);
    let wildcard = account
        .search_users(authed(
            SearchUsersRequest {
                query: Some(Query::Name("%".into())),
                page: None,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        wildcard.users.is_empty(),
        "LIKE wildcards are matched literally"
    );

    let updated = account
        .update_profile(authed(
            UpdateProfileRequest {
                nickname: Some("Kenny".into()),
                signature: Some("hello world".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.nickname.as_str(), updated.signature.as_str()),
        ("Kenny", "hello world")
    );
    let taken = account
        .update_profile(authed(
            UpdateProfileRequest {
                username: Some("laura".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&taken), Reason::UsernameTaken);

    let change = |current: &str| ChangePasswordRequest {
        current_password: current.into(),
        current_scheme: PasswordScheme::Plain.into(),
        new_password: "pw-ken-2".into(),
        new_scheme: PasswordScheme::Plain.into(),
    };
    assert_eq!(
        reason(
            &account
                .change_password(authed(change("nope"), &token))
                .await
                .unwrap_err()
        ),
        Reason::BadCredentials
    );
    account
        .change_password(authed(change("pw-ken"), &token))
        .await
        .unwrap();
    account
        .login(login("ken", "pw-ken-2", PasswordScheme::Plain))
        .await
        .unwrap();
    assert!(
        account
            .login(login("ken", "pw-ken", PasswordScheme::Plain))
            .await
            .is_err()
    );

    let delete = DeleteAccountRequest {
        password: "pw-ken-2".into(),
        password_scheme: PasswordScheme::Plain.into(),
    };
    account
        .delete_account(authed(delete, &token))
        .await
        .unwrap();
    assert_eq!(
        reason(
            &account
                .get_my_profile(authed(GetMyProfileRequest {}, &token))
                .await
                .unwrap_err()
        ),
        Reason::SessionRevoked
    );
    assert_eq!(
        reason(
            &account
                .login(login("ken", "pw-ken-2", PasswordScheme::Plain))
                .await
                .unwrap_err()
        ),
        Reason::BadCredentials
    );
    // The name is free again.
    account
        .register(register("ken", "pw-new-ken", PasswordScheme::Plain))
        .await
        .unwrap();
    server.stop().await;
}
both_backends!(
    profile_search_password_and_delete,
    super::profile_search_password_and_delete
);
