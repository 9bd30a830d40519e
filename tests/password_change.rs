//! A password change or a recovery ends every other way into the account: the access and
//! refresh tokens of other sessions and every legacy token (issue 18, item 5). Over real gRPC,
//! on SQLite and on PostgreSQL.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use rosetta_proto::{
    account::v1::{
        ChangePasswordRequest, ExchangeLegacyTokenRequest, GetMyProfileRequest,
        IssueLegacyTokenRequest, LegacyTokenFormat, LoginRequest, LoginResponse, PasswordScheme,
        RecoverPasswordRequest, RefreshRequest, RegisterRequest, SecurityAnswer,
        account_service_client::AccountServiceClient, login_request::Identifier,
        recover_password_request::Proof,
    },
    common::v1::{UserRef, user_ref::Ref},
};
use support::{Backend, TestServer, authed, reason};
use tonic::{Code, transport::Channel};

fn login(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        identifier: Some(Identifier::Username(username.into())),
        password: password.into(),
        password_scheme: PasswordScheme::Plain.into(),
        client: "test".into(),
    }
}

async fn legacy_token(
    account: &mut AccountServiceClient<Channel>,
    session: &LoginResponse,
    protocol: &str,
    format: LegacyTokenFormat,
) -> String {
    account
        .issue_legacy_token(authed(
            IssueLegacyTokenRequest {
                protocol: protocol.into(),
                format: format.into(),
            },
            &session.access_token,
        ))
        .await
        .expect("legacy token")
        .into_inner()
        .token
}

fn exchange(user_id: i64, protocol: &str, token: &str) -> ExchangeLegacyTokenRequest {
    ExchangeLegacyTokenRequest {
        protocol: protocol.into(),
        user: Some(UserRef {
            r#ref: Some(Ref::Id(user_id)),
        }),
        token: token.into(),
        ..Default::default()
    }
}

/// What an attacker who stole one session (and the legacy tokens of the victim's devices)
/// holds: the stolen session, a pipe token and a CloudChat token.
struct Stolen {
    session: LoginResponse,
    pipe: String,
    cloudchat: String,
}

async fn steal(account: &mut AccountServiceClient<Channel>, name: &str, pw: &str) -> Stolen {
    let session = account
        .login(login(name, pw))
        .await
        .expect("login")
        .into_inner();
    // The victim's pipe and CloudChat clients hold tokens of sessions of their own.
    let pipe_session = account.login(login(name, pw)).await.unwrap().into_inner();
    let pipe = legacy_token(account, &pipe_session, "pipe", LegacyTokenFormat::Alnum16).await;
    let cloudchat =
        legacy_token(account, &session, "cloudchat", LegacyTokenFormat::Printable).await;
    Stolen {
        session,
        pipe,
        cloudchat,
    }
}

/// Every credential in `stolen` is refused now.
async fn assert_locked_out(account: &mut AccountServiceClient<Channel>, user: i64, s: &Stolen) {
    let access = account
        .get_my_profile(authed(GetMyProfileRequest {}, &s.session.access_token))
        .await
        .expect_err("the stolen access token must stop working");
    assert_eq!(
        (access.code(), reason(&access)),
        (Code::Unauthenticated, Reason::SessionRevoked)
    );
    let refresh = account
        .refresh(RefreshRequest {
            refresh_token: s.session.refresh_token.clone(),
        })
        .await
        .expect_err("the stolen refresh token must not yield a new pair");
    assert_eq!(refresh.code(), Code::Unauthenticated);
    for (protocol, token) in [("pipe", &s.pipe), ("cloudchat", &s.cloudchat)] {
        let err = account
            .exchange_legacy_token(exchange(user, protocol, token))
            .await
            .expect_err("a legacy token login after the change must be refused");
        assert_eq!(reason(&err), Reason::BadCredentials, "{protocol}");
    }
}

async fn change_password_ends_other_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let own = server.user("victim", "old-password").await;
    let user = own.user.as_ref().unwrap().id;
    let stolen = steal(&mut account, "victim", "old-password").await;

    account
        .change_password(authed(
            ChangePasswordRequest {
                current_password: "old-password".into(),
                current_scheme: PasswordScheme::Plain.into(),
                new_password: "new-password".into(),
                new_scheme: PasswordScheme::Plain.into(),
            },
            &own.access_token,
        ))
        .await
        .expect("change password");

    assert_locked_out(&mut account, user, &stolen).await;
    // The session that made the change stays open, and its refresh token still works.
    account
        .get_my_profile(authed(GetMyProfileRequest {}, &own.access_token))
        .await
        .expect("the caller's own session stays open");
    account
        .refresh(RefreshRequest {
            refresh_token: own.refresh_token.clone(),
        })
        .await
        .expect("the caller's own refresh token still works");
    server.stop().await;
}
both_backends!(
    change_password_ends_other_sessions,
    super::change_password_ends_other_sessions
);

async fn recovery_ends_every_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    account
        .register(RegisterRequest {
            username: "victim".into(),
            password: "old-password".into(),
            password_scheme: PasswordScheme::Plain.into(),
            security_question_id: 3,
            security_answer: "blue".into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let stolen = steal(&mut account, "victim", "old-password").await;
    let user = stolen.session.user.as_ref().unwrap().id;
    // A token of a session that has since been refreshed away is a token too.
    let refreshed = account
        .refresh(RefreshRequest {
            refresh_token: stolen.session.refresh_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    account
        .recover_password(RecoverPasswordRequest {
            user: Some(UserRef {
                r#ref: Some(Ref::Username("victim".into())),
            }),
            proof: Some(Proof::SecurityAnswer(SecurityAnswer {
                question_id: 3,
                answer: "blue".into(),
            })),
            new_password: "new-password".into(),
            new_scheme: PasswordScheme::Plain.into(),
        })
        .await
        .expect("recover");

    let stolen = Stolen {
        session: refreshed,
        ..stolen
    };
    assert_locked_out(&mut account, user, &stolen).await;
    account
        .login(login("victim", "new-password"))
        .await
        .expect("the new password logs in");
    server.stop().await;
}
both_backends!(
    recovery_ends_every_session,
    super::recovery_ends_every_session
);
