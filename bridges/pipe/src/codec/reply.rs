//! Replies and pushes, rendered exactly as the real server (HEAD) wrote them (pipe.md §7).

use std::fmt::Write as _;

use super::command::Command;

/// A uid as the real server printed it from its user table: zero-padded to five digits.
/// Ids above 99999 print in full (a real five-digit ZEROFILL column would do the same).
pub fn padded_uid(uid: i64) -> String {
    format!("{uid:05}")
}

/// A group id as the real server's unread-message table printed it: zero-padded to 11.
pub fn padded_gid(gid: i64) -> String {
    format!("{gid:011}")
}

/// One entry of `unread_friend_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFriend {
    pub applicant: i64,
    pub note: String,
}

/// One entry of `unread_group_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJoin {
    pub applicant: i64,
    pub group: i64,
    pub note: String,
}

/// Server → client messages, rendered exactly as the real server (HEAD) wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    RegisterSucc,
    RegisterError,
    LoginSucc {
        uid: i64,
        token: String,
        unread: u64,
    },
    LoginError,
    /// The login could not be completed for a reason other than the credentials.
    LoginFailed,
    UpdateProfileSucc,
    UpdateProfileError,
    UpPassSucc,
    UpPassError,
    /// `userinfo` when the two uid strings were identical, else `friend_detail_info`.
    UserInfo {
        own: bool,
        nickname: String,
        icon: String,
        signature: String,
    },
    UnknownUserInfo,
    FriendInfo {
        friends: Vec<i64>,
    },
    GroupInfo {
        groups: Vec<i64>,
    },
    /// HEAD run-together layout: `<name><count>`; the doc layout separates them.
    GroupDetail {
        group: String,
        name: String,
        admin: i64,
        members: Vec<i64>,
        doc_layout: bool,
    },
    GroupNotFound,
    AddFriendSucc,
    AddFriendError(&'static str),
    DelFriendSucc,
    DelFriendError,
    HandFriendRequestSucc {
        accepted: bool,
    },
    HandFriendRequestError(&'static str),
    CreateGroupSucc {
        group: String,
    },
    CreateGroupError(&'static str),
    JoinGroupSucc,
    JoinGroupError(&'static str),
    HandGroupRequestSucc {
        accepted: bool,
    },
    HandGroupRequestError(&'static str),
    SendMessageSucc {
        online: bool,
    },
    SendMessageError(&'static str),
    SendFile {
        online: bool,
    },
    UnreadFriendRequests(Vec<PendingFriend>),
    UnreadGroupRequests(Vec<PendingJoin>),
    UnreadPrivate {
        from: i64,
        time: String,
        data: String,
    },
    UnreadGroup {
        group: i64,
        time: String,
        data: String,
    },
    NoUnreadMessage,
    // Pushes.
    PrivateMessage {
        kind: u32,
        from: String,
        time: String,
        data: String,
    },
    GroupMessage {
        kind: u32,
        group: String,
        from: String,
        time: String,
        data: String,
    },
    FriendRequest {
        from: String,
        note: String,
    },
    GroupRequest {
        from: String,
        group: String,
        note: String,
    },
    FileOffer {
        from: String,
        rest: String,
    },
    /// `send_file_error|…`: the seed document's in-band file form.
    SendFileUnsupported,
    /// The per-command reply to a (uid, token) pair that does not match.
    TokenError(Command),
}

impl Reply {
    /// The reply's name (its first field), the label of the outgoing-frame counter.
    pub fn name(&self) -> &'static str {
        use Reply::*;
        match self {
            RegisterSucc => "register_succ",
            RegisterError => "register_error",
            LoginSucc { .. } => "login_succ",
            LoginError | LoginFailed => "login_error",
            UpdateProfileSucc => "update_profile_succ",
            UpdateProfileError | GroupNotFound => "update_profile_error",
            UpPassSucc => "up_pass_succ",
            UpPassError => "up_pass_error",
            UserInfo { own: true, .. } => "userinfo",
            UserInfo { own: false, .. } | UnknownUserInfo => "friend_detail_info",
            FriendInfo { .. } => "friendinfo",
            GroupInfo { .. } => "groupinfo",
            GroupDetail {
                doc_layout: true, ..
            } => "groupinfo",
            GroupDetail { .. } => "group_detail_info",
            AddFriendSucc => "add_friend_succ",
            AddFriendError(_) => "add_friend_error",
            DelFriendSucc => "del_friend_succ",
            DelFriendError => "del_friend_error",
            HandFriendRequestSucc { .. } => "hand_friend_request_succ",
            HandFriendRequestError(_) => "hand_friend_request_error",
            CreateGroupSucc { .. } => "create_group_succ",
            CreateGroupError(_) => "create_group_error",
            JoinGroupSucc => "join_group_succ",
            JoinGroupError(_) => "join_group_error",
            HandGroupRequestSucc { .. } => "hand_group_request_succ",
            HandGroupRequestError(_) => "hand_group_request_error",
            SendMessageSucc { .. } => "send_message_succ",
            SendMessageError(_) => "send_message_error",
            SendFile { .. } => "send_file",
            SendFileUnsupported => "send_file_error",
            UnreadFriendRequests(_) => "unread_friend_request",
            UnreadGroupRequests(_) => "unread_group_request",
            UnreadPrivate { .. } | UnreadGroup { .. } => "unread_message",
            NoUnreadMessage => "no_unread_message",
            PrivateMessage { .. } | GroupMessage { .. } => "message",
            FriendRequest { .. } => "friend_request",
            GroupRequest { .. } => "group_request",
            FileOffer { .. } => "file",
            TokenError(Command::GetUserFriend) => "get_user_friend",
            TokenError(
                Command::GetUserGroup
                | Command::GetGroupInfo
                | Command::AddFriend
                | Command::JoinGroup,
            ) => "token_error",
            TokenError(_) => "update_profile_error",
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.render().into_bytes()
    }

    pub fn render(&self) -> String {
        match self.fixed() {
            Some(text) => text.to_owned(),
            None => self.render_fields(),
        }
    }

    /// The replies whose bytes never vary.
    fn fixed(&self) -> Option<&'static str> {
        use Reply::*;
        Some(match self {
            RegisterSucc => "register_succ|注册成功！",
            RegisterError => "register_error|注册失败！",
            LoginError => "login_error|用户名或密码错误！",
            LoginFailed => "login_error|登录失败！",
            UpdateProfileSucc => "update_profile_succ|修改成功！",
            UpdateProfileError => "update_profile_error|修改失败！",
            UpPassSucc => "up_pass_succ|修改成功！",
            UpPassError => "up_pass_error|密保错误！",
            UnknownUserInfo => "friend_detail_info|NULL|NULL|NULL",
            GroupNotFound => "update_profile_error|群id不存在",
            AddFriendSucc => "add_friend_succ|已发送请求！",
            DelFriendSucc => "del_friend_succ|删除成功！",
            DelFriendError => "del_friend_error|没有这个好友！",
            HandFriendRequestSucc { accepted: true } => "hand_friend_request_succ|成功同意请求！",
            HandFriendRequestSucc { accepted: false } => "hand_friend_request_succ|成功拒绝请求！",
            JoinGroupSucc => "join_group_succ|已发送请求！",
            HandGroupRequestSucc { accepted: true } => "hand_group_request_succ|成功同意请求！",
            HandGroupRequestSucc { accepted: false } => "hand_group_request_succ|成功拒绝请求！",
            SendMessageSucc { online: true } => "send_message_succ|发送成功！",
            SendMessageSucc { online: false } => "send_message_succ|对方离线！",
            SendFile { online: true } => "send_file|已发送请求",
            SendFile { online: false } => "send_file|对方离线",
            NoUnreadMessage => "no_unread_message|0",
            SendFileUnsupported => "send_file_error|不支持此发送方式！",
            TokenError(Command::GetUserFriend) => "get_user_friend|您无权进行此操作！",
            TokenError(
                Command::GetUserGroup
                | Command::GetGroupInfo
                | Command::AddFriend
                | Command::JoinGroup,
            ) => "token_error|token错误，请重新登录！",
            TokenError(_) => "update_profile_error|token错误，请重新登录！",
            _ => return None,
        })
    }

    /// The replies and pushes that carry fields.
    fn render_fields(&self) -> String {
        use Reply::*;
        let list = |name: &str, ids: &[i64], prefix: &str| {
            let mut out = format!("{name}|{}", ids.len());
            for id in ids {
                let _ = write!(out, "|{prefix}{id}");
            }
            out
        };
        match self {
            LoginSucc { uid, token, unread } => {
                format!("login_succ|登录成功!|{}|{token}|{unread}", padded_uid(*uid))
            }
            UserInfo {
                own,
                nickname,
                icon,
                signature,
            } => {
                let name = if *own {
                    "userinfo"
                } else {
                    "friend_detail_info"
                };
                format!("{name}|{nickname}|{icon}|{signature}")
            }
            FriendInfo { friends } => list("friendinfo", friends, "00"),
            GroupInfo { groups } => list("groupinfo", groups, ""),
            GroupDetail {
                group,
                name,
                admin,
                members,
                doc_layout,
            } => group_detail(group, name, *admin, members, *doc_layout),
            AddFriendError(why) => format!("add_friend_error|{why}"),
            HandFriendRequestError(why) => format!("hand_friend_request_error|{why}"),
            CreateGroupSucc { group } => format!("create_group_succ|{group}|群组创建成功"),
            CreateGroupError(why) => format!("create_group_error|{why}"),
            JoinGroupError(why) => format!("join_group_error|{why}"),
            HandGroupRequestError(why) => format!("hand_group_request_error|{why}"),
            SendMessageError(why) => format!("send_message_error|{why}"),
            UnreadFriendRequests(requests) => {
                let mut out = format!("unread_friend_request|{}", requests.len());
                for r in requests {
                    let _ = write!(out, "|{}|{}", r.applicant, r.note);
                }
                out
            }
            UnreadGroupRequests(requests) => {
                let mut out = format!("unread_group_request|{}", requests.len());
                for r in requests {
                    let _ = write!(out, "|{}|{}|{}", r.applicant, r.group, r.note);
                }
                out
            }
            UnreadPrivate { from, time, data } => {
                format!("unread_message|0|{}|{time}|{data}", padded_uid(*from))
            }
            UnreadGroup { group, time, data } => {
                format!("unread_message|1|{}|{time}|{data}", padded_gid(*group))
            }
            PrivateMessage {
                kind,
                from,
                time,
                data,
            } => format!("message|{kind}|{from}|{time}|{data}"),
            GroupMessage {
                kind,
                group,
                from,
                time,
                data,
            } => format!("message|{kind}|{group}|{from}|{time}|{data}"),
            FriendRequest { from, note } => format!("friend_request|{from}|{note}"),
            GroupRequest { from, group, note } => format!("group_request|{from}|{group}|{note}"),
            FileOffer { from, rest } => format!("file|{from}|{rest}"),
            // Rendered by `fixed`.
            _ => self.fixed().unwrap_or_default().to_owned(),
        }
    }
}

/// `get_group_info`'s reply: the real server ran the name and the member count together.
fn group_detail(group: &str, name: &str, admin: i64, members: &[i64], doc_layout: bool) -> String {
    let count = members.len() + 1;
    let mut out = if doc_layout {
        format!("groupinfo|{group}|{name}|{count}|{admin}")
    } else {
        format!("group_detail_info|{group}|{name}{count}|{admin}")
    };
    for m in members {
        let _ = write!(out, "|{m}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Command, Id};

    fn id(raw: &str) -> Id {
        Id::parse(raw).unwrap()
    }

    #[test]
    fn byte_counts_from_the_notes() {
        let register = Reply::RegisterSucc.to_bytes();
        assert_eq!(register.len(), 29);
        assert!(register.ends_with(&[0xe6, 0x88, 0x90, 0xe5, 0x8a, 0x9f, 0xef, 0xbc, 0x81]));
        let login = Reply::LoginSucc {
            uid: 124,
            token: "aB3dE5fG7hJ9kL1m".into(),
            unread: 0,
        }
        .to_bytes();
        assert_eq!(
            login,
            "login_succ|登录成功!|00124|aB3dE5fG7hJ9kL1m|0".as_bytes()
        );
        assert_eq!(login.len(), 49);
    }

    #[test]
    fn example_session_replies() {
        assert_eq!(
            Reply::FriendInfo { friends: vec![125] }.render(),
            "friendinfo|1|00125"
        );
        assert_eq!(
            Reply::FriendInfo { friends: vec![] }.render(),
            "friendinfo|0"
        );
        let detail = Reply::GroupDetail {
            group: "4001".into(),
            name: "team".into(),
            admin: 124,
            members: vec![125],
            doc_layout: false,
        };
        assert_eq!(detail.render(), "group_detail_info|4001|team2|124|125");
        assert_eq!(
            Reply::UnreadFriendRequests(vec![PendingFriend {
                applicant: 124,
                note: "letsbefriends".into()
            }])
            .render(),
            "unread_friend_request|1|124|letsbefriends"
        );
        assert_eq!(
            Reply::UnreadPrivate {
                from: 125,
                time: "20190905103200".into(),
                data: "are_you_there".into()
            }
            .render(),
            "unread_message|0|00125|20190905103200|are_you_there"
        );
        assert_eq!(
            Reply::UnreadGroup {
                group: 4001,
                time: "t".into(),
                data: "d".into()
            }
            .render(),
            "unread_message|1|00000004001|t|d"
        );
        assert_eq!(
            Reply::CreateGroupSucc {
                group: "4001".into()
            }
            .render(),
            "create_group_succ|4001|群组创建成功"
        );
    }

    #[test]
    fn per_command_token_errors() {
        assert_eq!(
            Command::GetUserFriend.token_error().render(),
            "get_user_friend|您无权进行此操作！"
        );
        for command in [
            Command::GetUserGroup,
            Command::GetGroupInfo,
            Command::AddFriend,
            Command::JoinGroup,
        ] {
            assert_eq!(
                command.token_error().render(),
                "token_error|token错误，请重新登录！"
            );
            assert_eq!(command.token_error().name(), "token_error");
        }
        assert_eq!(
            Command::SendMessage.token_error().render(),
            "update_profile_error|token错误，请重新登录！"
        );
        assert_eq!(Command::Login.malformed(), Reply::LoginError);
    }

    /// Ids outside 100–999 render as the real server's ZEROFILL column and `00` prefix would.
    #[test]
    fn ids_beyond_three_digits() {
        assert_eq!(padded_uid(7), "00007");
        assert_eq!(padded_uid(1234), "01234");
        assert_eq!(padded_uid(123_456), "123456");
        assert_eq!(
            Reply::FriendInfo {
                friends: vec![7, 1234, 123_456]
            }
            .render(),
            "friendinfo|3|007|001234|00123456"
        );
        let login = Reply::LoginSucc {
            uid: 1234,
            token: "aB3dE5fG7hJ9kL1m".into(),
            unread: 2,
        };
        assert_eq!(
            login.render(),
            "login_succ|登录成功!|01234|aB3dE5fG7hJ9kL1m|2"
        );
        // Compared numerically on input.
        assert_eq!(id("01234").value, id("1234").value);
    }
}
