//! Bytes ⇄ typed frames for the pipe protocol, byte-exact with the notes (pipe.md §3, §7).
//!
//! The protocol has no framing: one read is one command ([`commands`] cuts the one safe
//! exception). Fields are separated by `|` with no escaping; where a client puts `|` into free
//! text (a request note, a message), the surplus fields are joined back into that free-text
//! field, since the token is always last.

use std::fmt::Write as _;

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

    fn from_name(name: &str) -> Option<Self> {
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
    fn parse(raw: &str) -> Option<Self> {
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

/// Length of the tokens the server issues (16 alphanumerics).
const TOKEN_LEN: usize = 16;

/// Whether one read looks like the first part of a command whose rest is still in flight: a
/// known command with too few fields, text cut inside a UTF-8 character, or a final token
/// shorter than the server issues. The real server mangled commands split over two reads;
/// pipe.md §5 asks the bridge to tolerate them.
pub fn incomplete(bytes: &[u8]) -> bool {
    match parse(bytes) {
        Err(ParseError::Fields(_) | ParseError::Encoding(Some(_))) => true,
        Ok(request) => request
            .auth()
            .is_some_and(|auth| auth.token.len() < TOKEN_LEN),
        Err(_) => false,
    }
}

/// The commands in one read. One read is one command, as on the real server, with the
/// exception pipe.md §1.2 allows: where a `|`-delimited 16-character token is directly
/// followed (perhaps after CR, LF or NUL) by a known command name, and what comes before
/// parses as a whole command, a client wrote twice before the first was read, and the read
/// is cut there.
pub fn commands(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while let Some(bar) = bytes[at..].iter().position(|&b| b == b'|').map(|i| at + i) {
        at = bar + 1;
        let token_end = at + TOKEN_LEN;
        if !bytes
            .get(at..token_end)
            .is_some_and(|token| token.iter().all(u8::is_ascii_alphanumeric))
        {
            continue;
        }
        let next = bytes[token_end..]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n' | b'\0'))
            .map_or(bytes.len(), |i| token_end + i);
        if starts_with_command(&bytes[next..]) && parse(&bytes[start..token_end]).is_ok() {
            pieces.push(&bytes[start..token_end]);
            start = next;
            at = next;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Whether `bytes` begin with a command name, ended by `|`, CR, LF, NUL or the end.
pub fn starts_with_command(bytes: &[u8]) -> bool {
    let end = bytes
        .iter()
        .position(|b| matches!(b, b'|' | b'\r' | b'\n' | b'\0'))
        .unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end])
        .ok()
        .and_then(Command::from_name)
        .is_some()
}

/// Parses one read. Trailing CR, LF and NUL are ignored; interior spaces are kept.
pub fn parse(bytes: &[u8]) -> Result<Request, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        let name = bytes.split(|&b| b == b'|').next().unwrap_or_default();
        ParseError::Encoding(std::str::from_utf8(name).ok().and_then(Command::from_name))
    })?;
    let text = text.trim_end_matches(['\r', '\n', '\0']);
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let (name, rest) = text.split_once('|').unwrap_or((text, ""));
    let command = Command::from_name(name)
        .ok_or_else(|| ParseError::Unknown(name.chars().take(64).collect()))?;
    let fields: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('|').collect()
    };
    parse_fields(command, &fields).ok_or(ParseError::Fields(command))
}

fn parse_fields(command: Command, f: &[&str]) -> Option<Request> {
    use Command as C;
    let s = |i: usize| f.get(i).map(|v| (*v).to_owned());
    let id = |i: usize| f.get(i).and_then(|v| Id::parse(v));
    let auth = |uid: usize, token: usize| {
        Some(Auth {
            uid: id(uid)?,
            token: s(token)?,
        })
    };
    // Free text at `at`, then exactly `after` more fields: surplus `|`s belong to the text.
    let text = |at: usize, after: usize| -> Option<String> {
        let end = f.len().checked_sub(after)?;
        (end > at).then(|| f[at..end].join("|"))
    };
    let last = f.len().checked_sub(1);
    Some(match command {
        C::Register if f.len() >= 7 => Request::Register {
            username: s(0)?,
            password: s(1)?,
            nickname: s(2)?,
            icon: s(3)?,
            signature: s(4)?,
            question: s(5)?,
            // An eighth field is the seed doc's VIP flag, which the server ignores.
            answer: s(6)?,
        },
        C::Login if f.len() >= 2 => Request::Login {
            username: s(0)?,
            password: text(1, 0)?,
        },
        C::UpdateProfile if f.len() >= 5 => Request::UpdateProfile {
            auth: auth(0, 1)?,
            nickname: s(2)?,
            icon: s(3)?,
            signature: s(4)?,
            security: if f.len() >= 7 {
                Some((s(5)?, s(6)?))
            } else {
                None
            },
        },
        C::ForgetPasswd if f.len() >= 4 => Request::ForgetPasswd {
            username: s(0)?,
            question: s(1)?,
            answer: s(2)?,
            new_password: s(3)?,
        },
        C::GetUserInfo if f.len() >= 3 => Request::GetUserInfo {
            auth: auth(0, 2)?,
            target: id(1)?,
        },
        C::GetUserFriend if f.len() >= 2 => Request::GetUserFriend { auth: auth(0, 1)? },
        C::GetUserGroup if f.len() >= 2 => Request::GetUserGroup { auth: auth(0, 1)? },
        C::GetGroupInfo if f.len() >= 3 => Request::GetGroupInfo {
            auth: auth(0, 2)?,
            group: id(1)?,
        },
        C::AddFriend if f.len() >= 4 => Request::AddFriend {
            auth: auth(0, last?)?,
            target: id(1)?,
            note: text(2, 1)?,
        },
        C::DelFriend if f.len() >= 3 => Request::DelFriend {
            auth: auth(0, 2)?,
            friend: id(1)?,
        },
        C::HandFriendRequest if f.len() >= 4 => Request::HandFriendRequest {
            auth: auth(0, 3)?,
            applicant: id(1)?,
            flag: s(2)?,
        },
        C::CreateGroup if f.len() >= 4 => Request::CreateGroup {
            auth: auth(0, 3)?,
            name: s(1)?,
            group: Some(id(2)?),
        },
        C::CreateGroup if f.len() == 3 => Request::CreateGroup {
            auth: auth(0, 2)?,
            name: s(1)?,
            group: None,
        },
        C::JoinGroup if f.len() >= 4 => Request::JoinGroup {
            auth: auth(0, last?)?,
            group: id(1)?,
            note: text(2, 1)?,
        },
        C::HandGroupRequest if f.len() >= 5 => Request::HandGroupRequest {
            admin: Some(id(0)?),
            token: s(4)?,
            applicant: id(1)?,
            group: id(2)?,
            flag: s(3)?,
        },
        C::HandGroupRequest if f.len() == 4 => Request::HandGroupRequest {
            admin: None,
            token: s(3)?,
            applicant: id(0)?,
            group: id(1)?,
            flag: s(2)?,
        },
        C::SendMessage if f.len() >= 6 => Request::SendMessage {
            kind: f[0].trim().parse().ok()?,
            auth: auth(1, last?)?,
            to: id(2)?,
            time: s(3)?,
            data: text(4, 1)?,
        },
        // In the relay form the second field is the token, never all digits; in the seed form
        // it is the sender's uid.
        C::SendFile if f.len() >= 7 && id(1).is_some() => Request::SendFileInBand,
        C::SendFile if f.len() >= 4 => Request::SendFile {
            auth: auth(0, 1)?,
            receiver: id(2)?,
            rest: f[3..].join("|"),
        },
        C::GetUnreadFriendRequest => Request::GetUnreadFriendRequest {
            auth: optional_auth(f)?,
        },
        C::GetUnreadGroupRequest => Request::GetUnreadGroupRequest {
            auth: optional_auth(f)?,
        },
        C::GetUnreadMessage => Request::GetUnreadMessage {
            auth: optional_auth(f)?,
        },
        _ => return None,
    })
}

/// `uid|token`, or nothing at all (the seed doc's bare form, possibly with a trailing `|`).
fn optional_auth(f: &[&str]) -> Option<Option<Auth>> {
    match f {
        [] | [""] => Some(None),
        [uid, token, ..] => Some(Some(Auth {
            uid: Id::parse(uid)?,
            token: (*token).to_owned(),
        })),
        _ => None,
    }
}

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
        use Reply::*;
        let list = |name: &str, ids: &[i64], prefix: &str| {
            let mut out = format!("{name}|{}", ids.len());
            for id in ids {
                let _ = write!(out, "|{prefix}{id}");
            }
            out
        };
        match self {
            RegisterSucc => "register_succ|注册成功！".into(),
            RegisterError => "register_error|注册失败！".into(),
            LoginSucc { uid, token, unread } => {
                format!("login_succ|登录成功!|{}|{token}|{unread}", padded_uid(*uid))
            }
            LoginError => "login_error|用户名或密码错误！".into(),
            LoginFailed => "login_error|登录失败！".into(),
            UpdateProfileSucc => "update_profile_succ|修改成功！".into(),
            UpdateProfileError => "update_profile_error|修改失败！".into(),
            UpPassSucc => "up_pass_succ|修改成功！".into(),
            UpPassError => "up_pass_error|密保错误！".into(),
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
            UnknownUserInfo => "friend_detail_info|NULL|NULL|NULL".into(),
            FriendInfo { friends } => list("friendinfo", friends, "00"),
            GroupInfo { groups } => list("groupinfo", groups, ""),
            GroupDetail {
                group,
                name,
                admin,
                members,
                doc_layout,
            } => {
                let count = members.len() + 1;
                let mut out = if *doc_layout {
                    format!("groupinfo|{group}|{name}|{count}|{admin}")
                } else {
                    format!("group_detail_info|{group}|{name}{count}|{admin}")
                };
                for m in members {
                    let _ = write!(out, "|{m}");
                }
                out
            }
            GroupNotFound => "update_profile_error|群id不存在".into(),
            AddFriendSucc => "add_friend_succ|已发送请求！".into(),
            AddFriendError(why) => format!("add_friend_error|{why}"),
            DelFriendSucc => "del_friend_succ|删除成功！".into(),
            DelFriendError => "del_friend_error|没有这个好友！".into(),
            HandFriendRequestSucc { accepted: true } => {
                "hand_friend_request_succ|成功同意请求！".into()
            }
            HandFriendRequestSucc { accepted: false } => {
                "hand_friend_request_succ|成功拒绝请求！".into()
            }
            HandFriendRequestError(why) => format!("hand_friend_request_error|{why}"),
            CreateGroupSucc { group } => format!("create_group_succ|{group}|群组创建成功"),
            CreateGroupError(why) => format!("create_group_error|{why}"),
            JoinGroupSucc => "join_group_succ|已发送请求！".into(),
            JoinGroupError(why) => format!("join_group_error|{why}"),
            HandGroupRequestSucc { accepted: true } => {
                "hand_group_request_succ|成功同意请求！".into()
            }
            HandGroupRequestSucc { accepted: false } => {
                "hand_group_request_succ|成功拒绝请求！".into()
            }
            HandGroupRequestError(why) => format!("hand_group_request_error|{why}"),
            SendMessageSucc { online: true } => "send_message_succ|发送成功！".into(),
            SendMessageSucc { online: false } => "send_message_succ|对方离线！".into(),
            SendMessageError(why) => format!("send_message_error|{why}"),
            SendFile { online: true } => "send_file|已发送请求".into(),
            SendFile { online: false } => "send_file|对方离线".into(),
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
            NoUnreadMessage => "no_unread_message|0".into(),
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
            SendFileUnsupported => "send_file_error|不支持此发送方式！".into(),
            TokenError(Command::GetUserFriend) => "get_user_friend|您无权进行此操作！".into(),
            TokenError(
                Command::GetUserGroup
                | Command::GetGroupInfo
                | Command::AddFriend
                | Command::JoinGroup,
            ) => "token_error|token错误，请重新登录！".into(),
            TokenError(_) => "update_profile_error|token错误，请重新登录！".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Id {
        Id::parse(raw).unwrap()
    }

    #[test]
    fn commands_cut_short_are_told_apart() {
        let token = "aB3dE5fG7hJ9kL1m";
        let whole = format!("get_user_info|00124|00124|{token}");
        assert!(!incomplete(whole.as_bytes()));
        assert!(
            incomplete(&whole.as_bytes()[..whole.len() - 3]),
            "token cut"
        );
        assert!(incomplete(b"get_user_group|00124"), "fields missing");
        assert!(
            incomplete("login|名".as_bytes().split_last().unwrap().1),
            "UTF-8 cut"
        );
        for not_cut in [
            "hello",
            "launch_missiles|1|2",
            "login|bob|",
            "get_unread_message|",
        ] {
            assert!(!incomplete(not_cut.as_bytes()), "{not_cut}");
        }
        let first = format!("get_user_friend|00124|{token}");
        let two = format!("{first}{}", &whole[..whole.len() - 3]);
        let pieces = commands(two.as_bytes());
        assert_eq!(pieces[0], first.as_bytes());
        assert!(
            incomplete(pieces[1]),
            "the cut second command is the one held"
        );
        assert!(!incomplete(commands(whole.as_bytes())[0]));
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

    #[test]
    fn parses_both_request_forms() {
        let register =
            parse(b"register|alice|e10adc3949ba59abbe56e057f20f883e|Alice|3|hello|1|cat|0")
                .unwrap();
        assert!(matches!(register, Request::Register { ref answer, .. } if answer == "cat"));
        assert_eq!(
            parse(b"create_group|00124|team|4001|tok").unwrap(),
            Request::CreateGroup {
                auth: Auth {
                    uid: id("00124"),
                    token: "tok".into()
                },
                name: "team".into(),
                group: Some(id("4001"))
            }
        );
        assert!(matches!(
            parse(b"create_group|00124|team|tok").unwrap(),
            Request::CreateGroup { group: None, .. }
        ));
        assert_eq!(
            parse(b"get_unread_message|").unwrap(),
            Request::GetUnreadMessage { auth: None }
        );
        assert_eq!(
            parse(b"get_unread_message").unwrap(),
            Request::GetUnreadMessage { auth: None }
        );
        let doc_hand = parse(b"hand_group_request|00125|4001|0|tok").unwrap();
        assert!(matches!(
            doc_hand,
            Request::HandGroupRequest { admin: None, ref applicant, ref token, .. }
                if applicant.value == 125 && token == "tok"
        ));
        let head_hand = parse(b"hand_group_request|00124|00125|4001|0|tok").unwrap();
        assert!(matches!(
            head_hand,
            Request::HandGroupRequest { admin: Some(ref admin), ref applicant, .. }
                if admin.value == 124 && applicant.value == 125
        ));
        assert_eq!(
            parse(b"send_file|0|00124|00125|t|1|data|tok").unwrap(),
            Request::SendFileInBand
        );
        assert!(matches!(
            parse(b"send_file|00124|aB3dE5fG7hJ9kL1m|00125|10.0.0.1|9000|a.txt|12").unwrap(),
            Request::SendFile { ref rest, .. } if rest == "10.0.0.1|9000|a.txt|12"
        ));
    }

    #[test]
    fn a_read_is_cut_only_after_a_token_followed_by_a_command() {
        let token = "aB3dE5fG7hJ9kL1m";
        let first = format!("get_user_friend|00124|{token}");
        let second = format!("get_user_info|00124|00125|{token}");
        let third = "get_unread_message";
        let glued = format!("{first}{second}\r\n{third}");
        assert_eq!(
            commands(glued.as_bytes()),
            [first.as_bytes(), second.as_bytes(), third.as_bytes()]
        );
        // A single command, even one whose text holds a command name, stays whole.
        for whole in [
            format!("send_message|0|00124|00125|t|login|x|{token}"),
            format!("send_message|0|00124|00125|t|{token}x|{token}"),
            // Not a 16-character token before the name: the real server's reading.
            "login|alice|e10adc3949ba59abbe56e057f20f883eget_user_friend|1|x".to_owned(),
            // What comes before does not parse: no cut.
            format!("get_user_friend|{token}get_user_friend|00124|{token}"),
            String::new(),
        ] {
            assert_eq!(commands(whole.as_bytes()), [whole.as_bytes()], "{whole:?}");
        }
        // A message's free text naming a command right after a token-like field is the one
        // ambiguity; the cut gives the token-checked first part and a second command.
        let text = format!("send_message|0|00124|00125|t|hi|{token}login|bob|pw|{token}");
        assert_eq!(commands(text.as_bytes()).len(), 2);
    }

    #[test]
    fn free_text_keeps_spaces_and_pipes() {
        let msg = parse(b"send_message|0|00124|00125|t1|hello there|a|b|tok\r\n").unwrap();
        assert_eq!(
            msg,
            Request::SendMessage {
                auth: Auth {
                    uid: id("00124"),
                    token: "tok".into()
                },
                kind: 0,
                to: id("00125"),
                time: "t1".into(),
                data: "hello there|a|b".into()
            }
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"\xff\xfe"), Err(ParseError::Encoding(None)));
        assert_eq!(
            parse(b"login|\xff|x"),
            Err(ParseError::Encoding(Some(Command::Login)))
        );
        assert_eq!(
            parse(b"nonsense|1|2"),
            Err(ParseError::Unknown("nonsense".into()))
        );
        assert_eq!(parse(b"login"), Err(ParseError::Fields(Command::Login)));
        assert_eq!(
            parse(b"get_user_friend|abc|tok"),
            Err(ParseError::Fields(Command::GetUserFriend))
        );
        assert_eq!(
            parse(b"send_message|x|1|2|t|d|tok"),
            Err(ParseError::Fields(Command::SendMessage))
        );
    }

    /// Random reads built from protocol-shaped pieces never panic the parser, and nothing
    /// that is not UTF-8 ever parses.
    #[test]
    fn arbitrary_reads_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"|",
            b"send_message",
            b"login",
            b"create_group",
            b"hand_group_request",
            b"get_unread_message",
            b"00124",
            b"4001",
            b"tok",
            b"aB3dE5fG7hJ9kL1m",
            b"\xff",
            b" ",
            b"\r\n",
            b"\0",
            "你".as_bytes(),
            b"0",
            b"",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let mut read = Vec::new();
            for _ in 0..next() % 12 {
                read.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            if let Ok(request) = parse(&read) {
                assert!(
                    std::str::from_utf8(&read).is_ok(),
                    "{request:?} parsed from invalid UTF-8"
                );
            }
            let pieces = commands(&read);
            let kept: usize = pieces.iter().map(|p| p.len()).sum();
            assert!(kept <= read.len(), "{pieces:?} from {read:?}");
            for piece in &pieces[..pieces.len() - 1] {
                assert!(
                    parse(piece).is_ok(),
                    "a cut leaves a whole command: {piece:?}"
                );
            }
        }
    }
}
