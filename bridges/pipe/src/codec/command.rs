//! Requests: one command's bytes into a typed [`Request`] (pipe.md §3), accepting both the
//! real server's (HEAD) and the seed document's forms.

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
const MAX_ID_FIELD: usize = 64;

/// Parses one read. Trailing CR, LF and NUL are ignored; interior spaces are kept.
pub fn parse(bytes: &[u8]) -> Result<Request, ParseError> {
    parse_metered(bytes, &Meter::default())
}

/// [`parse`], adding the bytes it examines to `meter`.
pub(super) fn parse_metered(bytes: &[u8], meter: &Meter) -> Result<Request, ParseError> {
    meter.add(bytes.len());
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
    meter.add(rest.len());
    parse_fields(command, &fields, meter).ok_or(ParseError::Fields(command))
}

/// A count of the bytes the reader examined, to show it works in linear time.
#[derive(Default)]
pub(super) struct Meter(std::cell::Cell<usize>);

impl Meter {
    pub(super) fn add(&self, bytes: usize) {
        self.0.set(self.0.get() + bytes);
    }

    pub(super) fn total(&self) -> usize {
        self.0.get()
    }
}

/// Builds the request of `command` from its fields (after the name).
///
/// Every check that can fail (field counts, ids, the message type) runs before any field of
/// unbounded length is copied: the reader tries this at each place a read might be cut, and
/// a failed attempt must cost O(1) for the reader to stay linear.
pub(super) fn parse_fields(command: Command, f: &[&str], meter: &Meter) -> Option<Request> {
    use Command as C;
    let s = |i: usize| {
        f.get(i).map(|v| {
            meter.add(v.len());
            (*v).to_owned()
        })
    };
    let id = |i: usize| {
        f.get(i).and_then(|v| {
            meter.add(v.len().min(MAX_ID_FIELD));
            Id::parse(v)
        })
    };
    let auth = |uid: usize, token: usize| {
        Some(Auth {
            uid: id(uid)?,
            token: s(token)?,
        })
    };
    // Free text at `at`, then exactly `after` more fields: surplus `|`s belong to the text.
    let text = |at: usize, after: usize| -> Option<String> {
        let end = f.len().checked_sub(after)?;
        (end > at).then(|| {
            let joined = f[at..end].join("|");
            meter.add(joined.len());
            joined
        })
    };
    let last = f.len().checked_sub(1);
    // Struct fields are evaluated in the order written: ids first, copies after.
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
            target: id(1)?,
            auth: auth(0, 2)?,
        },
        C::GetUserFriend if f.len() >= 2 => Request::GetUserFriend { auth: auth(0, 1)? },
        C::GetUserGroup if f.len() >= 2 => Request::GetUserGroup { auth: auth(0, 1)? },
        C::GetGroupInfo if f.len() >= 3 => Request::GetGroupInfo {
            group: id(1)?,
            auth: auth(0, 2)?,
        },
        C::AddFriend if f.len() >= 4 => Request::AddFriend {
            target: id(1)?,
            auth: auth(0, last?)?,
            note: text(2, 1)?,
        },
        C::DelFriend if f.len() >= 3 => Request::DelFriend {
            friend: id(1)?,
            auth: auth(0, 2)?,
        },
        C::HandFriendRequest if f.len() >= 4 => Request::HandFriendRequest {
            applicant: id(1)?,
            auth: auth(0, 3)?,
            flag: s(2)?,
        },
        C::CreateGroup if f.len() >= 4 => Request::CreateGroup {
            group: Some(id(2)?),
            auth: auth(0, 3)?,
            name: s(1)?,
        },
        C::CreateGroup if f.len() == 3 => Request::CreateGroup {
            auth: auth(0, 2)?,
            name: s(1)?,
            group: None,
        },
        C::JoinGroup if f.len() >= 4 => Request::JoinGroup {
            group: id(1)?,
            auth: auth(0, last?)?,
            note: text(2, 1)?,
        },
        C::HandGroupRequest if f.len() >= 5 => Request::HandGroupRequest {
            admin: Some(id(0)?),
            applicant: id(1)?,
            group: id(2)?,
            token: s(4)?,
            flag: s(3)?,
        },
        C::HandGroupRequest if f.len() == 4 => Request::HandGroupRequest {
            admin: None,
            applicant: id(0)?,
            group: id(1)?,
            token: s(3)?,
            flag: s(2)?,
        },
        C::SendMessage if f.len() >= 6 => Request::SendMessage {
            kind: message_kind(f[0])?,
            to: id(2)?,
            auth: auth(1, last?)?,
            time: s(3)?,
            data: text(4, 1)?,
        },
        // In the relay form the second field is the token, never all digits; in the seed form
        // it is the sender's uid.
        C::SendFile if f.len() >= 7 && id(1).is_some() => Request::SendFileInBand,
        C::SendFile if f.len() >= 4 => Request::SendFile {
            receiver: id(2)?,
            auth: auth(0, 1)?,
            rest: text(3, 0)?,
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

/// `send_message`'s type field (bounded like an id).
fn message_kind(field: &str) -> Option<u32> {
    (field.len() <= MAX_ID_FIELD)
        .then(|| field.trim().parse().ok())
        .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Id {
        Id::parse(raw).unwrap()
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
}
