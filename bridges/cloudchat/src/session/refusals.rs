//! The one table from canonical error reasons to what a CloudChat client is told.
//!
//! [`refusal`] sorts every [`Reason`] into the few cases the protocol has words for: the ones it
//! names, then the rest by [`Class`] (exhaustively: a class added to the API does not compile
//! here until it is placed); [`Refusal::text`]
//! gives each command's failure text for it, the texts of the original server (cloudchat.md
//! §4). A call's cause is logged where it becomes a reply ([`refused`]).

use rosetta_proto::{Class, Reason};
use tonic::Status;

/// The command a refused call served, for its failure text and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Login,
    TokenLogin,
    Register,
    /// Logging in right after a REGISTER, or giving the new session its CloudChat token.
    OpenSession,
    Profile,
    /// LOAD_CONTACTS, LOAD_FRIEND_REQUEST, LOAD_MESSAGES, MARK_READ, CLEAR_MESSAGES.
    Listing,
    AddFriend,
    Accept,
    Refuse,
    DeleteContact,
    Send,
    Upload,
}

/// What a refused call means to a CloudChat client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    BadCredentials,
    Throttled,
    UsernameTaken,
    EmailTaken,
    /// An e-mail change needs a code sent to the new address, which the protocol cannot carry.
    CodeRequired,
    AlreadyFriends,
    RequestPending,
    ReverseRequestPending,
    NoSuchRequest,
    /// The session or token ended (password changed, logged out elsewhere, token rotated).
    SessionEnded,
    /// A refusal the protocol has no words for: the command's own failure text.
    Other,
    /// The services failed or did not answer in time: the command's own failure text.
    Outage,
    /// The server is in maintenance: a login's [`MAINTENANCE`] text (the client shows a
    /// failure's text verbatim on its form).
    Maintenance,
}

/// Where each reason falls.
pub(super) fn refusal(reason: Option<Reason>) -> Refusal {
    match reason {
        Some(Reason::BadCredentials) => Refusal::BadCredentials,
        // A disabled account: the command's own failure text (a login's "登录失败，请重试").
        Some(Reason::AccountDisabled) => Refusal::Other,
        Some(Reason::Throttled) => Refusal::Throttled,
        Some(Reason::Maintenance) => Refusal::Maintenance,
        Some(Reason::UsernameTaken) => Refusal::UsernameTaken,
        Some(Reason::EmailTaken) => Refusal::EmailTaken,
        Some(Reason::CodeRequired) => Refusal::CodeRequired,
        Some(Reason::AlreadyFriends) => Refusal::AlreadyFriends,
        Some(Reason::RequestPending) => Refusal::RequestPending,
        Some(Reason::ReverseRequestPending) => Refusal::ReverseRequestPending,
        Some(Reason::NotFound) => Refusal::NoSuchRequest,
        Some(other) => match other.class() {
            Class::Session => Refusal::SessionEnded,
            Class::Service => Refusal::Outage,
            Class::Input
            | Class::Credentials
            | Class::Taken
            | Class::Denied
            | Class::State
            | Class::Limit => Refusal::Other,
        },
        // No reason: a transport failure or a deadline, never a service's answer.
        None => Refusal::Outage,
    }
}

impl Refusal {
    /// The failure text `step`'s reply carries for this refusal.
    pub(super) fn text(self, step: Step) -> &'static str {
        match (step, self) {
            (Step::Login, Refusal::BadCredentials) => "密码错误",
            (Step::Login, Refusal::Throttled) => "尝试次数过多，请稍后再试",
            (Step::Login | Step::TokenLogin | Step::OpenSession, Refusal::Maintenance) => {
                MAINTENANCE
            }
            (Step::Login | Step::OpenSession, _) => "登录失败，请重试",
            (Step::TokenLogin, _) => "令牌已失效，请重新登录",
            (Step::Register, Refusal::UsernameTaken) => "用户名已存在",
            (Step::Register, Refusal::EmailTaken) => "邮箱已存在",
            (Step::Register, _) => "注册失败，请检查用户名和邮箱",
            (Step::Profile, Refusal::CodeRequired) => EMAIL_NEEDS_CODE,
            (Step::Profile, _) => "更新 users 数据表失败",
            (Step::AddFriend, Refusal::AlreadyFriends) => "你和 TA 已经是好友了",
            (Step::AddFriend, Refusal::RequestPending) => "已向 TA 发送过好友请求",
            (Step::AddFriend, Refusal::ReverseRequestPending) => "已收到过 TA 发来的好友请求",
            (Step::Accept | Step::Refuse, Refusal::NoSuchRequest) => NO_SUCH_REQUEST,
            (Step::Accept, _) => "联系人列表更新失败",
            (Step::Refuse, _) => "好友请求列表更新失败",
            (Step::Listing | Step::AddFriend, _) => "数据库操作失败",
            (Step::DeleteContact, _) => "数据表 friends 操作失败",
            (Step::Send, _) => "messages 数据表更新失败",
            (Step::Upload, _) => "文件上传失败",
        }
    }
}

/// A login refused while the server is in maintenance ("the server is under maintenance,
/// please try again later").
pub(super) const MAINTENANCE: &str = "服务器维护中，请稍后再试";

/// An e-mail change over this protocol: it cannot carry the code sent to the new address.
pub(super) const EMAIL_NEEDS_CODE: &str = "修改邮箱需要验证码，邮箱未修改";
pub(super) const NO_SUCH_REQUEST: &str = "该条好友请求不存在";

/// Sorts a refused call of `user`'s and logs its cause with the step: an outage as a warning,
/// a refusal the client is told about at info level.
pub(super) fn refused(user: i64, step: Step, status: &Status) -> Refusal {
    let refusal = refusal(Reason::of(status));
    match refusal {
        Refusal::Outage => tracing::warn!(user, ?step, %status, "call failed"),
        _ => tracing::info!(user, ?step, ?refusal, %status, "call refused"),
    }
    refusal
}

/// The failure text of `step` for a refused call of `user`'s, its cause logged.
pub(super) fn failed(user: i64, step: Step, status: &Status) -> &'static str {
    refused(user, step, status).text(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_place() {
        for reason in Reason::ALL {
            // Compiles only while the match is exhaustive; here it must also not panic.
            let _ = refusal(Some(*reason)).text(Step::Send);
        }
        assert_eq!(refusal(None), Refusal::Outage);
        assert_eq!(
            refusal(Some(Reason::Maintenance)).text(Step::Login),
            MAINTENANCE
        );
        assert_eq!(
            refusal(Some(Reason::AlreadyFriends)).text(Step::AddFriend),
            "你和 TA 已经是好友了"
        );
        assert_eq!(
            refusal(Some(Reason::NotFound)).text(Step::Refuse),
            NO_SUCH_REQUEST
        );
    }
}
