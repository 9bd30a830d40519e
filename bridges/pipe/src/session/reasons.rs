//! The one table from a refused canonical call to the pipe reply the real server would have
//! sent. A reason the protocol has no word for is not a refusal but a failure: the caller logs
//! it and answers with the command's failure form ([`failure`]).

use rosetta_proto::Reason;
use tonic::Status;

use crate::codec::{Command, Reply};

/// The canonical calls whose refusals a pipe client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Register,
    Login,
    RecoverPassword,
    /// `ExchangeLegacyToken` for a (uid, token) pair presented with this command.
    TokenCheck(Command),
    UpdateProfile,
    LookupUser,
    GetGroup,
    SendFriendRequest,
    RemoveFriend,
    RespondFriendRequest,
    CreateGroup,
    RequestJoinGroup,
    RespondJoinRequest,
    SendPrivate,
    SendToGroup,
    SendFileOffer,
}

/// The reply to `call` refused for `reason`, or `None` when this is a failure, not a refusal
/// the client should be told about in the protocol's own words: no reason (a transport
/// failure or a deadline), the service failing, or a refusal this command never meets.
pub(super) fn refusal(call: Call, reason: Option<Reason>) -> Option<Reply> {
    use Call as C;
    let reason = reason?;
    match call {
        C::Register
        | C::Login
        | C::RecoverPassword
        | C::TokenCheck(_)
        | C::UpdateProfile
        | C::LookupUser
        | C::GetGroup => account(call, reason),
        C::SendFriendRequest
        | C::RemoveFriend
        | C::RespondFriendRequest
        | C::CreateGroup
        | C::RequestJoinGroup
        | C::RespondJoinRequest => social(call, reason),
        C::SendPrivate | C::SendToGroup | C::SendFileOffer => messages(call, reason),
    }
}

/// Account and lookups: any refusal gets the command's one error text, as on the real server.
fn account(call: Call, reason: Reason) -> Option<Reply> {
    use Call as C;
    use Reason as R;
    Some(match (call, reason) {
        (C::Register, R::UsernameTaken | R::BadName | R::InvalidArgument) => Reply::RegisterError,
        (C::Login, R::BadCredentials | R::InvalidArgument | R::BadName) => Reply::LoginError,
        // Locked for repeated wrong passwords, disabled by an operator, or the server in
        // maintenance: the real server's "login failed" (its answer when the server side
        // failed), the same text for every user name.
        (C::Login, R::Throttled | R::RateLimited | R::AccountDisabled | R::Maintenance) => {
            Reply::LoginFailed
        }
        (
            C::RecoverPassword,
            R::BadProof | R::NotFound | R::InvalidArgument | R::Throttled | R::RateLimited,
        ) => Reply::UpPassError,
        (
            C::TokenCheck(command),
            R::BadCredentials
            | R::TokenInvalid
            | R::TokenExpired
            | R::TokenMissing
            | R::SessionRevoked
            | R::AccountDisabled
            | R::Maintenance
            | R::NotFound
            | R::InvalidArgument,
        ) => command.token_error(),
        (C::UpdateProfile, R::InvalidArgument | R::BadName | R::TooLarge) => {
            Reply::UpdateProfileError
        }
        (C::LookupUser, R::NotFound) => Reply::UnknownUserInfo,
        // Unknown, or not visible to a non-member: the real server's one answer.
        (C::GetGroup, R::NotFound | R::NotMember | R::Forbidden) => Reply::GroupNotFound,
        _ => return None,
    })
}

/// Friends and groups.
fn social(call: Call, reason: Reason) -> Option<Reply> {
    use Call as C;
    use Reason as R;
    Some(match (call, reason) {
        (C::SendFriendRequest, R::AlreadyFriends) => Reply::AddFriendError("已存在好友！"),
        // Asking again while a request waits: the real server acknowledged.
        (C::SendFriendRequest, R::RequestPending) => Reply::AddFriendSucc,
        (C::SendFriendRequest, R::ReverseRequestPending) => {
            Reply::AddFriendError("对方已向你发送好友请求！")
        }
        (C::SendFriendRequest, R::NotFound) => Reply::AddFriendError("用户不存在！"),
        (C::SendFriendRequest, R::Blocked) => Reply::AddFriendError("无法添加该用户！"),
        (C::SendFriendRequest, R::InvalidArgument) => Reply::AddFriendError("请求无效！"),
        // The real server answered success whatever was named (a non-friend, oneself).
        (C::RemoveFriend, R::InvalidArgument | R::NotFound | R::NotFriends) => Reply::DelFriendSucc,
        (
            C::RespondFriendRequest,
            R::NotFound | R::NotPending | R::InvalidArgument | R::AlreadyFriends,
        ) => Reply::HandFriendRequestError("不存在的请求！"),
        (C::CreateGroup, R::GroupIdTaken) => Reply::CreateGroupError("群号已被使用！"),
        (C::CreateGroup, R::InvalidArgument | R::BadName | R::LimitReached) => {
            Reply::CreateGroupError("群组创建失败！")
        }
        (C::RequestJoinGroup, R::RequestPending) => Reply::JoinGroupSucc,
        (C::RequestJoinGroup, R::AlreadyMember) => Reply::JoinGroupError("已是群成员！"),
        (C::RequestJoinGroup, R::NotFound | R::InvalidArgument | R::SystemGroup) => {
            Reply::JoinGroupError("群组不存在！")
        }
        (C::RespondJoinRequest, R::NotAdmin | R::NotOwner | R::Forbidden) => {
            Reply::HandGroupRequestError("您不是群管理员！")
        }
        (
            C::RespondJoinRequest,
            R::NotFound | R::NotPending | R::InvalidArgument | R::AlreadyMember,
        ) => Reply::HandGroupRequestError("不存在的请求！"),
        _ => return None,
    })
}

/// Messages and file offers.
fn messages(call: Call, reason: Reason) -> Option<Reply> {
    use Call as C;
    use Reason as R;
    Some(match (call, reason) {
        (C::SendPrivate | C::SendToGroup, R::NotFriends) => {
            Reply::SendMessageError("对方不是你的好友！")
        }
        (C::SendPrivate | C::SendToGroup, R::Blocked) => {
            Reply::SendMessageError("对方拒绝接收消息！")
        }
        (C::SendPrivate | C::SendToGroup, R::Muted) => Reply::SendMessageError("你已被禁言！"),
        (C::SendPrivate | C::SendToGroup, R::TooLarge) => Reply::SendMessageError("消息过长！"),
        (C::SendPrivate, R::NotFound) => Reply::SendMessageError("用户不存在！"),
        (C::SendToGroup, R::NotFound | R::NotMember) => Reply::SendMessageError("群组不存在！"),
        (
            C::SendPrivate | C::SendToGroup,
            R::InvalidArgument | R::BadRecipient | R::EmptyMessage | R::BadKind,
        ) => Reply::SendMessageError("发送失败！"),
        // Offline, not a friend, or unknown: the offer cannot be delivered.
        (
            C::SendFileOffer,
            R::Offline | R::NotFriends | R::NotFound | R::Blocked | R::InvalidArgument,
        ) => Reply::SendFile { online: false },
        _ => return None,
    })
}

/// The refusal `status` stands for, or the status back when it is a failure.
pub(super) fn refused(call: Call, status: Status) -> Result<Reply, Status> {
    match refusal(call, Reason::of(&status)) {
        Some(reply) => {
            tracing::debug!(?call, %status, "refused");
            Ok(reply)
        }
        None => Err(status),
    }
}

/// The reply to a command whose backend call failed for a reason the protocol has no word for.
pub(super) fn failure(command: Command) -> Reply {
    use Command as C;
    match command {
        C::Register => Reply::RegisterError,
        C::Login => Reply::LoginFailed,
        C::UpdateProfile => Reply::UpdateProfileError,
        C::ForgetPasswd => Reply::UpPassError,
        C::GetUserInfo => Reply::UnknownUserInfo,
        C::GetGroupInfo => Reply::GroupNotFound,
        C::AddFriend => Reply::AddFriendError("发送失败！"),
        C::DelFriend => Reply::DelFriendError,
        C::HandFriendRequest => Reply::HandFriendRequestError("不存在的请求！"),
        C::CreateGroup => Reply::CreateGroupError("群组创建失败！"),
        C::JoinGroup => Reply::JoinGroupError("群组不存在！"),
        C::HandGroupRequest => Reply::HandGroupRequestError("不存在的请求！"),
        C::SendMessage => Reply::SendMessageError("发送失败！"),
        C::SendFile => Reply::SendFile { online: false },
        C::GetUserFriend => Reply::FriendInfo { friends: vec![] },
        C::GetUserGroup => Reply::GroupInfo { groups: vec![] },
        C::GetUnreadFriendRequest => Reply::UnreadFriendRequests(vec![]),
        C::GetUnreadGroupRequest => Reply::UnreadGroupRequests(vec![]),
        C::GetUnreadMessage => Reply::NoUnreadMessage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad token is told apart from the service failing: only the first is a token error.
    #[test]
    fn a_bad_token_is_not_an_outage() {
        let check = Call::TokenCheck(Command::GetUserFriend);
        assert_eq!(
            refusal(check, Some(Reason::BadCredentials)),
            Some(Command::GetUserFriend.token_error())
        );
        assert_eq!(refusal(check, Some(Reason::Unavailable)), None);
        assert_eq!(
            refusal(Call::Login, Some(Reason::AccountDisabled)),
            Some(Reply::LoginFailed)
        );
        assert_eq!(
            refusal(Call::Login, Some(Reason::Maintenance)),
            Some(Reply::LoginFailed)
        );
        assert_eq!(refusal(check, None), None);
    }
}
