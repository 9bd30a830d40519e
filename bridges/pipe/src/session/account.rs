//! Account commands.
//!
//! | legacy command | canonical call | legacy reply |
//! |---|---|---|
//! | `register` | `Register` | `register_succ` / `register_error` |
//! | `forget_passwd` | `RecoverPassword` (security answer) | `up_pass_succ` / `up_pass_error` |
//! | `update_profile` | `UpdateProfile` | `update_profile_succ` / `update_profile_error` |
//! | `get_user_info` | `LookupUser` | `userinfo` / `friend_detail_info` |

use rosetta_bridge_kit::{Backend, UserSession};
use rosetta_proto::{
    account::v1::{
        LookupUserRequest, RecoverPasswordRequest, RegisterRequest, SecurityAnswer,
        UpdateProfileRequest, recover_password_request::Proof,
    },
    common::v1::{UserRef, user_ref},
};
use tonic::Status;

use super::{
    login::password_scheme,
    reasons::{Call, refused},
};
use crate::codec::{Id, Reply};

/// What `register` sets besides the credentials.
pub(super) struct Profile {
    pub nickname: String,
    pub icon: String,
    pub signature: String,
    pub question: String,
    pub answer: String,
}

/// `register|username|password|nickname|icon|signature|question|answer[|VIP]`.
pub(super) async fn register(
    backend: &Backend,
    username: String,
    password: String,
    profile: Profile,
) -> Result<Reply, Status> {
    let Ok(question) = profile.question.trim().parse::<i32>() else {
        return Ok(Reply::RegisterError);
    };
    let registered = backend
        .account()
        .register(RegisterRequest {
            username,
            password_scheme: password_scheme(&password).into(),
            password,
            nickname: profile.nickname,
            avatar: profile.icon,
            signature: profile.signature,
            security_question_id: question,
            security_answer: profile.answer,
            ..Default::default()
        })
        .await;
    match registered {
        Ok(_) => Ok(Reply::RegisterSucc),
        Err(status) => refused(Call::Register, status),
    }
}

/// `forget_passwd|username|question|answer|new_password`.
pub(super) async fn forget_passwd(
    backend: &Backend,
    username: String,
    question: &str,
    answer: String,
    new_password: String,
) -> Result<Reply, Status> {
    let Ok(question) = question.trim().parse::<i32>() else {
        return Ok(Reply::UpPassError);
    };
    let recovered = backend
        .account()
        .recover_password(RecoverPasswordRequest {
            user: Some(UserRef {
                r#ref: Some(user_ref::Ref::Username(username)),
            }),
            proof: Some(Proof::SecurityAnswer(SecurityAnswer {
                question_id: question,
                answer,
            })),
            new_scheme: password_scheme(&new_password).into(),
            new_password,
        })
        .await;
    match recovered {
        Ok(_) => Ok(Reply::UpPassSucc),
        Err(status) => refused(Call::RecoverPassword, status),
    }
}

/// `update_profile|uid|token|nickname|icon|signature[|question|answer]`.
pub(super) async fn update_profile(
    session: &UserSession,
    nickname: String,
    icon: String,
    signature: String,
    security: Option<(String, String)>,
) -> Result<Reply, Status> {
    let (question, answer) = match security {
        Some((question, answer)) => match question.trim().parse::<i32>() {
            Ok(question) => (Some(question), Some(answer)),
            Err(_) => return Ok(Reply::UpdateProfileError),
        },
        None => (None, None),
    };
    let request = UpdateProfileRequest {
        nickname: Some(nickname),
        avatar: Some(icon),
        signature: Some(signature),
        security_question_id: question,
        security_answer: answer,
        ..Default::default()
    };
    let updated = session
        .call(request, |backend, r| async move {
            backend.account().update_profile(r).await
        })
        .await;
    match updated {
        Ok(_) => Ok(Reply::UpdateProfileSucc),
        Err(status) => refused(Call::UpdateProfile, status),
    }
}

/// `get_user_info|uid|target|token`: `userinfo` iff both uid strings are identical.
pub(super) async fn user_info(
    session: &UserSession,
    uid: &Id,
    target: Id,
) -> Result<Reply, Status> {
    let request = LookupUserRequest {
        user: Some(UserRef {
            r#ref: Some(user_ref::Ref::Id(target.value)),
        }),
    };
    let found = session
        .call(request, |backend, r| async move {
            backend.account().lookup_user(r).await
        })
        .await;
    match found {
        Ok(user) => Ok(Reply::UserInfo {
            own: uid.raw == target.raw,
            nickname: user.nickname,
            icon: user.avatar,
            signature: user.signature,
        }),
        Err(status) => refused(Call::LookupUser, status),
    }
}
