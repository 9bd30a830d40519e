//! The requests of the protocol (pipe.md §3) as typed values, in both the real server's (HEAD)
//! and the seed document's forms.

use super::reply::Reply;

/// Why a read could not be turned into a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not UTF-8; carries the command when its name (before the first `|`) is readable.
    Encoding(Option<Command>),
    /// No `|` and not a known bare command, or nothing at all.
    Empty,
    /// A known command with too few fields; carries the command for its error reply.
    Fields(Command),
    /// A command this protocol does not have (no reply, as on the real server).
    Unknown(String),
}

/// The commands of the protocol, for per-command error replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Register,
    Login,
    UpdateProfile,
    ForgetPasswd,
    GetUserInfo,
    GetUserFriend,
    GetUserGroup,
    GetGroupInfo,
    AddFriend,
    DelFriend,
    HandFriendRequest,
    CreateGroup,
    JoinGroup,
    HandGroupRequest,
    SendMessage,
    SendFile,
    GetUnreadFriendRequest,
    GetUnreadGroupRequest,
    GetUnreadMessage,
}

impl Command {
    /// The command's name on the wire, also its label in the counters.
    pub const fn name(self) -> &'static str {
        use Command::*;
        match self {
            Register => "register",
            Login => "login",
            UpdateProfile => "update_profile",
            ForgetPasswd => "forget_passwd",
            GetUserInfo => "get_user_info",
            GetUserFriend => "get_user_friend",
            GetUserGroup => "get_user_group",
            GetGroupInfo => "get_group_info",
            AddFriend => "add_friend",
            DelFriend => "del_friend",
            HandFriendRequest => "hand_friend_request",
            CreateGroup => "create_group",
            JoinGroup => "join_group",
            HandGroupRequest => "hand_group_request",
            SendMessage => "send_message",
            SendFile => "send_file",
            GetUnreadFriendRequest => "get_unread_friend_request",
            GetUnreadGroupRequest => "get_unread_group_request",
            GetUnreadMessage => "get_unread_message",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Self> {
        use Command::*;
        Some(match name {
            "register" => Register,
            "login" => Login,
            "update_profile" => UpdateProfile,
            "forget_passwd" => ForgetPasswd,
            "get_user_info" => GetUserInfo,
            "get_user_friend" => GetUserFriend,
            "get_user_group" => GetUserGroup,
            "get_group_info" => GetGroupInfo,
            "add_friend" => AddFriend,
            "del_friend" => DelFriend,
            "hand_friend_request" => HandFriendRequest,
            "create_group" => CreateGroup,
            "join_group" => JoinGroup,
            "hand_group_request" => HandGroupRequest,
            "send_message" => SendMessage,
            "send_file" => SendFile,
            "get_unread_friend_request" => GetUnreadFriendRequest,
            "get_unread_group_request" => GetUnreadGroupRequest,
            "get_unread_message" => GetUnreadMessage,
            _ => return None,
        })
    }

    /// The reply the real server sends when the (uid, token) pair does not match (pipe.md §3).
    pub fn token_error(self) -> Reply {
        Reply::TokenError(self)
    }

    /// The reply to a request of this command whose fields cannot be read: the commands
    /// without a token fail with their own error, the others with their token error (a
    /// missing or shifted field leaves the real server without the token).
    pub fn malformed(self) -> Reply {
        match self {
            Command::Register => Reply::RegisterError,
            Command::Login => Reply::LoginError,
            Command::ForgetPasswd => Reply::UpPassError,
            other => other.token_error(),
        }
    }
}

/// A numeric id as the client wrote it: compared numerically, echoed verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub raw: String,
    pub value: i64,
}

impl Id {
    pub(super) fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_ID_FIELD {
            return None;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 18 || !trimmed.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            raw: raw.to_owned(),
            value: trimmed.parse().ok()?,
        })
    }
}

/// The (uid, token) pair a token-carrying command presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub uid: Id,
    pub token: String,
}

/// A client request, fields as the real client sends them (HEAD and seed-doc forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Register {
        username: String,
        password: String,
        nickname: String,
        icon: String,
        signature: String,
        question: String,
        answer: String,
    },
    Login {
        username: String,
        password: String,
    },
    UpdateProfile {
        auth: Auth,
        nickname: String,
        icon: String,
        signature: String,
        security: Option<(String, String)>,
    },
    ForgetPasswd {
        username: String,
        question: String,
        answer: String,
        new_password: String,
    },
    GetUserInfo {
        auth: Auth,
        target: Id,
    },
    GetUserFriend {
        auth: Auth,
    },
    GetUserGroup {
        auth: Auth,
    },
    GetGroupInfo {
        auth: Auth,
        group: Id,
    },
    AddFriend {
        auth: Auth,
        target: Id,
        note: String,
    },
    DelFriend {
        auth: Auth,
        friend: Id,
    },
    HandFriendRequest {
        auth: Auth,
        applicant: Id,
        flag: String,
    },
    /// `group` is the client-chosen id (HEAD form); `None` in the seed doc's 3-field form.
    CreateGroup {
        auth: Auth,
        name: String,
        group: Option<Id>,
    },
    JoinGroup {
        auth: Auth,
        group: Id,
        note: String,
    },
    /// HEAD form: `admin|applicant|group|flag|token`. Seed form: `applicant|group|flag|token`,
    /// where the admin is whoever owns the token (`admin` is then `None`).
    HandGroupRequest {
        admin: Option<Id>,
        token: String,
        applicant: Id,
        group: Id,
        flag: String,
    },
    SendMessage {
        auth: Auth,
        kind: u32,
        to: Id,
        time: String,
        data: String,
    },
    /// HEAD relay form: the text after the receiver is passed through verbatim.
    SendFile {
        auth: Auth,
        receiver: Id,
        rest: String,
    },
    /// The seed document's in-band form `type|uid1|uid2|time|id|data|token`, which no version
    /// of the real server implemented.
    SendFileInBand,
    /// Bare (seed) form has no auth: the session's login applies.
    GetUnreadFriendRequest {
        auth: Option<Auth>,
    },
    GetUnreadGroupRequest {
        auth: Option<Auth>,
    },
    GetUnreadMessage {
        auth: Option<Auth>,
    },
}

impl Request {
    /// The (uid, token) pair a command presents, for the commands that must present one.
    pub fn auth(&self) -> Option<&Auth> {
        match self {
            Request::UpdateProfile { auth, .. }
            | Request::GetUserInfo { auth, .. }
            | Request::GetUserFriend { auth }
            | Request::GetUserGroup { auth }
            | Request::GetGroupInfo { auth, .. }
            | Request::AddFriend { auth, .. }
            | Request::DelFriend { auth, .. }
            | Request::HandFriendRequest { auth, .. }
            | Request::CreateGroup { auth, .. }
            | Request::JoinGroup { auth, .. }
            | Request::SendMessage { auth, .. }
            | Request::SendFile { auth, .. } => Some(auth),
            _ => None,
        }
    }

    /// The command this request is of.
    pub fn command(&self) -> Command {
        use Command as C;
        match self {
            Request::Register { .. } => C::Register,
            Request::Login { .. } => C::Login,
            Request::UpdateProfile { .. } => C::UpdateProfile,
            Request::ForgetPasswd { .. } => C::ForgetPasswd,
            Request::GetUserInfo { .. } => C::GetUserInfo,
            Request::GetUserFriend { .. } => C::GetUserFriend,
            Request::GetUserGroup { .. } => C::GetUserGroup,
            Request::GetGroupInfo { .. } => C::GetGroupInfo,
            Request::AddFriend { .. } => C::AddFriend,
            Request::DelFriend { .. } => C::DelFriend,
            Request::HandFriendRequest { .. } => C::HandFriendRequest,
            Request::CreateGroup { .. } => C::CreateGroup,
            Request::JoinGroup { .. } => C::JoinGroup,
            Request::HandGroupRequest { .. } => C::HandGroupRequest,
            Request::SendMessage { .. } => C::SendMessage,
            Request::SendFile { .. } | Request::SendFileInBand => C::SendFile,
            Request::GetUnreadFriendRequest { .. } => C::GetUnreadFriendRequest,
            Request::GetUnreadGroupRequest { .. } => C::GetUnreadGroupRequest,
            Request::GetUnreadMessage { .. } => C::GetUnreadMessage,
        }
    }
}

/// Longest id field read: ids have at most 18 digits, so anything much longer is refused
/// before it is trimmed or copied (a parse attempt at a possible cut costs O(1), see
/// [`super::frame`]).
pub(super) const MAX_ID_FIELD: usize = 64;
