//! A recovery address changes only with proof that the caller reads it (issue 18, item 5):
//! UpdateProfile(email) needs a code sent to the new address, and an address nobody has
//! proven stays free for its real owner. Over real gRPC, on SQLite and on PostgreSQL.

use rosetta_proto::Reason;
use rosetta_testkit::{self as support, both_backends};

use rosetta_proto::account::v1::{
    GetMyProfileRequest, RegisterRequest, SendVerificationCodeRequest, UpdateProfileRequest,
    VerificationChannel, VerificationPurpose,
};
use support::{Backend, TestServer, authed, reason};
use tonic::Code;

fn change_code(target: &str) -> SendVerificationCodeRequest {
    SendVerificationCodeRequest {
        channel: VerificationChannel::Email.into(),
        target: target.into(),
        purpose: VerificationPurpose::ChangeEmail.into(),
    }
}

async fn email_of(server: &TestServer, token: &str) -> String {
    let mut account = server.account().await;
    account
        .get_my_profile(authed(GetMyProfileRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .email
}

async fn email_change_needs_a_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    let mallory = server.user("mallory", "pw-mallory").await;
    let token = mallory.access_token.clone();
    // Claiming somebody else's address without a code: refused, nothing stored, and the
    // other fields of the same call do not change either (all or nothing).
    let err = account
        .update_profile(authed(
            UpdateProfileRequest {
                email: Some("victim@example.com".into()),
                nickname: Some("changed".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("an e-mail change without a code must be refused");
    assert_eq!(
        (err.code(), reason(&err)),
        (Code::FailedPrecondition, Reason::CodeRequired)
    );
    assert_eq!(email_of(&server, &token).await, "");

    // A code sent to the address, but a wrong guess: refused.
    account
        .send_verification_code(change_code("victim@example.com"))
        .await
        .expect("code sent");
    let sent = server.codes.last_code("victim@example.com").expect("code");
    let wrong = if sent == "000000" { "111111" } else { "000000" };
    let err = account
        .update_profile(authed(
            UpdateProfileRequest {
                email: Some("victim@example.com".into()),
                verification_code: wrong.into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::CodeInvalid);
    assert_eq!(email_of(&server, &token).await, "");

    // While Mallory's change is pending, the address's real owner registers with it.
    account
        .register(RegisterRequest {
            username: "victim".into(),
            password: "pw-victim".into(),
            email: "victim@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("an unverified address does not block its owner");

    // A code for the address Mallory does read changes it.
    account
        .send_verification_code(change_code("Mallory@Example.com"))
        .await
        .expect("code sent");
    let code = server.codes.last_code("mallory@example.com").expect("code");
    let updated = account
        .update_profile(authed(
            UpdateProfileRequest {
                email: Some("Mallory@Example.com".into()),
                verification_code: code.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("a verified change")
        .into_inner();
    assert_eq!(updated.email, "mallory@example.com");
    // Setting the address the account already has proves nothing new: no code needed.
    account
        .update_profile(authed(
            UpdateProfileRequest {
                email: Some("mallory@example.com".into()),
                nickname: Some("again".into()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("an unchanged address needs no code");
    server.stop().await;
}
both_backends!(email_change_needs_a_code, super::email_change_needs_a_code);

/// A code for an address another account holds is refused when asked for.
async fn taken_address_gets_no_change_code(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut account = server.account().await;
    account
        .register(RegisterRequest {
            username: "owner".into(),
            password: "pw-owner".into(),
            email: "owner@example.com".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = account
        .send_verification_code(change_code("owner@example.com"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Reason::EmailTaken);
    let phone = account
        .send_verification_code(SendVerificationCodeRequest {
            channel: VerificationChannel::Phone.into(),
            target: "13800138000".into(),
            purpose: VerificationPurpose::ChangeEmail.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(phone.code(), Code::InvalidArgument);
    server.stop().await;
}
both_backends!(
    taken_address_gets_no_change_code,
    super::taken_address_gets_no_change_code
);
