//! One command's bytes into a typed [`Request`], with a count of the bytes examined.

use super::command::{Auth, Command, Id, MAX_ID_FIELD, ParseError, Request};

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
/// unbounded length is copied (struct fields are evaluated in the order written: ids first,
/// copies after): the reader tries this at each place a read might be cut, and a failed
/// attempt must cost O(1) for the reader to stay linear.
pub(super) fn parse_fields(command: Command, f: &[&str], meter: &Meter) -> Option<Request> {
    let fields = Fields { f, meter };
    match command {
        Command::Register
        | Command::Login
        | Command::UpdateProfile
        | Command::ForgetPasswd
        | Command::GetUserInfo
        | Command::GetUserFriend
        | Command::GetUserGroup
        | Command::GetUnreadFriendRequest
        | Command::GetUnreadGroupRequest
        | Command::GetUnreadMessage => fields.account(command),
        Command::GetGroupInfo
        | Command::AddFriend
        | Command::DelFriend
        | Command::HandFriendRequest
        | Command::CreateGroup
        | Command::JoinGroup
        | Command::HandGroupRequest
        | Command::SendMessage
        | Command::SendFile => fields.social(command),
    }
}

/// The fields of one command, read with a count of the bytes examined.
struct Fields<'a, 'm> {
    f: &'a [&'a str],
    meter: &'m Meter,
}

impl Fields<'_, '_> {
    fn len(&self) -> usize {
        self.f.len()
    }

    /// Field `i`, copied.
    fn s(&self, i: usize) -> Option<String> {
        self.f.get(i).map(|v| {
            self.meter.add(v.len());
            (*v).to_owned()
        })
    }

    /// Field `i` as an id (bounded: see [`MAX_ID_FIELD`]).
    fn id(&self, i: usize) -> Option<Id> {
        self.f.get(i).and_then(|v| {
            self.meter.add(v.len().min(MAX_ID_FIELD));
            Id::parse(v)
        })
    }

    fn auth(&self, uid: usize, token: usize) -> Option<Auth> {
        Some(Auth {
            uid: self.id(uid)?,
            token: self.s(token)?,
        })
    }

    /// Free text at `at`, then exactly `after` more fields: surplus `|`s belong to the text.
    fn text(&self, at: usize, after: usize) -> Option<String> {
        let end = self.f.len().checked_sub(after)?;
        (end > at).then(|| {
            let joined = self.f[at..end].join("|");
            self.meter.add(joined.len());
            joined
        })
    }

    fn last(&self) -> Option<usize> {
        self.f.len().checked_sub(1)
    }

    /// The account commands and the listings of the user's own things.
    fn account(&self, command: Command) -> Option<Request> {
        use Command as C;
        let n = self.len();
        Some(match command {
            C::Register if n >= 7 => Request::Register {
                username: self.s(0)?,
                password: self.s(1)?,
                nickname: self.s(2)?,
                icon: self.s(3)?,
                signature: self.s(4)?,
                question: self.s(5)?,
                // An eighth field is the seed doc's VIP flag, which the server ignores.
                answer: self.s(6)?,
            },
            C::Login if n >= 2 => Request::Login {
                username: self.s(0)?,
                password: self.text(1, 0)?,
            },
            C::UpdateProfile if n >= 5 => Request::UpdateProfile {
                auth: self.auth(0, 1)?,
                nickname: self.s(2)?,
                icon: self.s(3)?,
                signature: self.s(4)?,
                security: if n >= 7 {
                    Some((self.s(5)?, self.s(6)?))
                } else {
                    None
                },
            },
            C::ForgetPasswd if n >= 4 => Request::ForgetPasswd {
                username: self.s(0)?,
                question: self.s(1)?,
                answer: self.s(2)?,
                new_password: self.s(3)?,
            },
            C::GetUserInfo if n >= 3 => Request::GetUserInfo {
                target: self.id(1)?,
                auth: self.auth(0, 2)?,
            },
            C::GetUserFriend if n >= 2 => Request::GetUserFriend {
                auth: self.auth(0, 1)?,
            },
            C::GetUserGroup if n >= 2 => Request::GetUserGroup {
                auth: self.auth(0, 1)?,
            },
            C::GetUnreadFriendRequest => Request::GetUnreadFriendRequest {
                auth: optional_auth(self.f)?,
            },
            C::GetUnreadGroupRequest => Request::GetUnreadGroupRequest {
                auth: optional_auth(self.f)?,
            },
            C::GetUnreadMessage => Request::GetUnreadMessage {
                auth: optional_auth(self.f)?,
            },
            _ => return None,
        })
    }

    /// Friends, groups, messages and files.
    fn social(&self, command: Command) -> Option<Request> {
        use Command as C;
        let n = self.len();
        Some(match command {
            C::GetGroupInfo if n >= 3 => Request::GetGroupInfo {
                group: self.id(1)?,
                auth: self.auth(0, 2)?,
            },
            C::AddFriend if n >= 4 => Request::AddFriend {
                target: self.id(1)?,
                auth: self.auth(0, self.last()?)?,
                note: self.text(2, 1)?,
            },
            C::DelFriend if n >= 3 => Request::DelFriend {
                friend: self.id(1)?,
                auth: self.auth(0, 2)?,
            },
            C::HandFriendRequest if n >= 4 => Request::HandFriendRequest {
                applicant: self.id(1)?,
                auth: self.auth(0, 3)?,
                flag: self.s(2)?,
            },
            C::CreateGroup if n >= 4 => Request::CreateGroup {
                group: Some(self.id(2)?),
                auth: self.auth(0, 3)?,
                name: self.s(1)?,
            },
            C::CreateGroup if n == 3 => Request::CreateGroup {
                auth: self.auth(0, 2)?,
                name: self.s(1)?,
                group: None,
            },
            C::JoinGroup if n >= 4 => Request::JoinGroup {
                group: self.id(1)?,
                auth: self.auth(0, self.last()?)?,
                note: self.text(2, 1)?,
            },
            C::HandGroupRequest if n >= 5 => Request::HandGroupRequest {
                admin: Some(self.id(0)?),
                applicant: self.id(1)?,
                group: self.id(2)?,
                token: self.s(4)?,
                flag: self.s(3)?,
            },
            C::HandGroupRequest if n == 4 => Request::HandGroupRequest {
                admin: None,
                applicant: self.id(0)?,
                group: self.id(1)?,
                token: self.s(3)?,
                flag: self.s(2)?,
            },
            C::SendMessage if n >= 6 => Request::SendMessage {
                kind: message_kind(self.f[0])?,
                to: self.id(2)?,
                auth: self.auth(1, self.last()?)?,
                time: self.s(3)?,
                data: self.text(4, 1)?,
            },
            // In the relay form the second field is the token, never all digits; in the seed
            // form it is the sender's uid.
            C::SendFile if n >= 7 && self.id(1).is_some() => Request::SendFileInBand,
            C::SendFile if n >= 4 => Request::SendFile {
                receiver: self.id(2)?,
                auth: self.auth(0, 1)?,
                rest: self.text(3, 0)?,
            },
            _ => return None,
        })
    }
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
