//! Frames of the DPC protocol (dpc.md §1–§6): a 15-byte header holding the body's byte length
//! in ASCII decimal, left-aligned and space-padded, then a JSON body. Replies are written the way
//! Python's `json.dumps` writes them (`", "` and `": "` separators, non-ASCII as `\uXXXX`), so
//! the bytes match the real servers'.

use serde_json::{Map, Value};

/// Header size in bytes.
pub const HEADER_LEN: usize = 15;
/// Largest JSON body accepted; real bodies are a few hundred bytes (a file listing a few KiB).
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header is not a decimal number padded with spaces.
    BadHeader,
    /// The announced body is larger than [`MAX_BODY`].
    TooLarge(usize),
    /// The body is not a JSON object.
    BadJson,
    /// A key the request needs is missing or has the wrong type.
    Missing(&'static str),
    /// An `op` (or `look`) this server does not have.
    UnknownOp(i64),
}

/// The body length a header announces. Readers on the real servers strip whitespace and call
/// `int()`, so leading spaces are accepted too.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let text = std::str::from_utf8(header)
        .map_err(|_| FrameError::BadHeader)?
        .trim_matches(' ');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FrameError::BadHeader);
    }
    let len: usize = text.parse().map_err(|_| FrameError::BadHeader)?;
    if len > MAX_BODY {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// A decoded frame: the bytes it took and its JSON object.
pub type Decoded = (usize, Map<String, Value>);

/// One frame from the front of `buf`: the bytes it takes and its JSON object, or `None` when
/// more bytes are needed. A bad header is refused as soon as its 15 bytes are there, so a huge
/// announced length never makes a reader wait for (or buffer) the body.
pub fn decode_frame(buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = parse_header(header)?;
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((HEADER_LEN + len, parse_body(body)?)))
}

/// Header and body in one buffer (so a single write carries both, as the readers need).
pub fn frame(body: &Value) -> Vec<u8> {
    let json = python_json(body);
    let mut out = format!("{:<width$}", json.len(), width = HEADER_LEN).into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

/// `json.dumps(value)` with Python's defaults.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Parses a body into a JSON object.
pub fn parse_body(body: &[u8]) -> Result<Map<String, Value>, FrameError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(FrameError::BadJson),
    }
}

fn int(map: &Map<String, Value>, key: &'static str) -> Result<i64, FrameError> {
    map.get(key)
        .and_then(Value::as_i64)
        .ok_or(FrameError::Missing(key))
}

fn string(map: &Map<String, Value>, key: &'static str) -> Result<String, FrameError> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(FrameError::Missing(key))
}

fn args(map: &Map<String, Value>) -> Result<&Map<String, Value>, FrameError> {
    map.get("args")
        .and_then(Value::as_object)
        .ok_or(FrameError::Missing("args"))
}

/// Name and plain password, carried by every chat and file request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub password: String,
}

fn credentials(map: &Map<String, Value>) -> Result<Credentials, FrameError> {
    let args = args(map)?;
    Ok(Credentials {
        name: string(args, "name")?,
        password: string(args, "password")?,
    })
}

/// Requests to the auth server (9999).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    Login {
        user_name: String,
        password: String,
    },
    SmsCode {
        phone: String,
    },
    Register {
        user_name: String,
        password: String,
        phone: String,
        code: String,
        email: String,
    },
}

impl AuthRequest {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, FrameError> {
        let a = args(map)?;
        Ok(match int(map, "op")? {
            0 => Self::Login {
                user_name: string(a, "user_name")?,
                password: string(a, "user_pwd")?,
            },
            1 => Self::SmsCode {
                phone: string(a, "user_phone")?,
            },
            2 => Self::Register {
                user_name: string(a, "user_name")?,
                password: string(a, "user_pwd")?,
                phone: string(a, "user_phone")?,
                // The client sends the typed code as a string; accept a number too.
                code: a
                    .get("user_vcode")
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .ok_or(FrameError::Missing("user_vcode"))?,
                email: string(a, "user_email")?,
            },
            op => return Err(FrameError::UnknownOp(op)),
        })
    }
}

/// The auth server's only reply shape: `{"op": op, "test": n}`.
pub fn auth_reply(op: i64, test: i64) -> Value {
    let mut map = Map::new();
    map.insert("op".into(), op.into());
    map.insert("test".into(), test.into());
    Value::Object(map)
}

/// A line for the shared room (chat server, 9998).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub credentials: Credentials,
    pub news: String,
}

impl ChatLine {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, FrameError> {
        match int(map, "op")? {
            0 => Ok(Self {
                credentials: credentials(map)?,
                news: string(map, "news")?,
            }),
            op => Err(FrameError::UnknownOp(op)),
        }
    }
}

/// The broadcast every other room member receives: `news` is `"<name>:<text>"`.
pub fn chat_push(name: &str, text: &str) -> Value {
    let mut args = Map::new();
    args.insert("name".into(), name.into());
    let mut map = Map::new();
    map.insert("op".into(), 0.into());
    map.insert("args".into(), Value::Object(args));
    map.insert("news".into(), format!("{name}:{text}").into());
    Value::Object(map)
}

/// Requests to the file server (9988).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// Header of an upload; exactly `size` raw bytes follow. `folder` is `file_dirname` for a
    /// folder upload (`file_type` 1).
    Upload {
        credentials: Credentials,
        file_name: String,
        size: u64,
        folder: Option<String>,
    },
    List {
        credentials: Credentials,
    },
    Download {
        credentials: Credentials,
        file_name: String,
    },
}

impl FileRequest {
    pub fn parse(map: &Map<String, Value>) -> Result<Self, FrameError> {
        let credentials = credentials(map)?;
        Ok(match int(map, "op")? {
            0 => {
                // `file_size` is a string of digits; readers use int(), so numbers work too.
                let size = match map.get("file_size") {
                    Some(Value::String(s)) => s
                        .trim()
                        .parse()
                        .map_err(|_| FrameError::Missing("file_size"))?,
                    Some(Value::Number(n)) => n.as_u64().ok_or(FrameError::Missing("file_size"))?,
                    _ => return Err(FrameError::Missing("file_size")),
                };
                let folder = match int(map, "file_type")? {
                    1 => Some(string(map, "file_dirname")?),
                    _ => None,
                };
                Self::Upload {
                    credentials,
                    file_name: string(map, "file_name")?,
                    size,
                    folder,
                }
            }
            1 => match int(map, "look")? {
                0 => Self::List { credentials },
                1 => Self::Download {
                    credentials,
                    file_name: string(map, "file_name")?,
                },
                look => return Err(FrameError::UnknownOp(look)),
            },
            op => return Err(FrameError::UnknownOp(op)),
        })
    }
}

/// A row of the shared listing: `[name, uploader, "YYYY-MM-DD HH:MM:SS", "文件"|"文件夹"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub uploader: String,
    pub time: String,
    pub folder: bool,
}

/// `{"op": 0, "exist_file": 0 | [[…], …]}`.
pub fn listing(rows: &[Listed]) -> Value {
    let exist = if rows.is_empty() {
        Value::from(0)
    } else {
        Value::Array(
            rows.iter()
                .map(|r| {
                    let kind = if r.folder { "文件夹" } else { "文件" };
                    Value::Array(vec![
                        r.name.clone().into(),
                        r.uploader.clone().into(),
                        r.time.clone().into(),
                        kind.into(),
                    ])
                })
                .collect(),
        )
    };
    let mut map = Map::new();
    map.insert("op".into(), 0.into());
    map.insert("exist_file".into(), exist);
    Value::Object(map)
}

/// Header of one downloaded file; exactly `size` raw bytes follow.
pub fn download_header(file_name: &str, in_folder: bool, size: u64) -> Value {
    let mut map = Map::new();
    map.insert("op".into(), 1.into());
    map.insert("file_name".into(), file_name.into());
    map.insert("file_type".into(), i64::from(in_folder).into());
    map.insert("file_size".into(), size.to_string().into());
    Value::Object(map)
}

/// `{"op": 1, "file_name": 400}`: not found.
pub fn not_found() -> Value {
    let mut map = Map::new();
    map.insert("op".into(), 1.into());
    map.insert("file_name".into(), 400.into());
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &str {
        std::str::from_utf8(&frame[HEADER_LEN..]).unwrap()
    }

    #[test]
    fn auth_replies_are_twenty_bytes_with_padded_header() {
        let f = frame(&auth_reply(0, 0));
        assert_eq!(&f[..HEADER_LEN], b"20             ");
        assert_eq!(body(&f), r#"{"op": 0, "test": 0}"#);
        assert_eq!(parse_header(f[..HEADER_LEN].try_into().unwrap()), Ok(20));
    }

    #[test]
    fn example_frames_of_the_notes() {
        // 5b and 5d: the broadcast, with Python escaping of Chinese text.
        let f = frame(&chat_push("alice", "hi bob\n"));
        assert_eq!(&f[..HEADER_LEN], b"62             ");
        assert_eq!(
            body(&f),
            r#"{"op": 0, "args": {"name": "alice"}, "news": "alice:hi bob\n"}"#
        );
        let f = frame(&chat_push("alice", "你好\n"));
        assert_eq!(
            body(&f),
            r#"{"op": 0, "args": {"name": "alice"}, "news": "alice:\u4f60\u597d\n"}"#
        );
        assert_eq!(f.len() - HEADER_LEN, 68);
        // 8b: the listing.
        let rows = [
            Listed {
                name: "notes.txt".into(),
                uploader: "alice".into(),
                time: "2019-09-05 10:00:00".into(),
                folder: false,
            },
            Listed {
                name: "pics".into(),
                uploader: "alice".into(),
                time: "2019-09-05 10:01:00".into(),
                folder: true,
            },
        ];
        let f = frame(&listing(&rows));
        assert_eq!(
            body(&f),
            r#"{"op": 0, "exist_file": [["notes.txt", "alice", "2019-09-05 10:00:00", "\u6587\u4ef6"], ["pics", "alice", "2019-09-05 10:01:00", "\u6587\u4ef6\u5939"]]}"#
        );
        assert_eq!(&f[..HEADER_LEN], b"152            ");
        assert_eq!(body(&frame(&listing(&[]))), r#"{"op": 0, "exist_file": 0}"#);
        // 9b, 10b, 11.
        assert_eq!(
            body(&frame(&download_header("notes.txt", false, 5))),
            r#"{"op": 1, "file_name": "notes.txt", "file_type": 0, "file_size": "5"}"#
        );
        assert_eq!(
            frame(&download_header("pics/a.txt", true, 3)).len() - HEADER_LEN,
            70
        );
        assert_eq!(body(&frame(&not_found())), r#"{"op": 1, "file_name": 400}"#);
    }

    #[test]
    fn parses_client_requests() {
        let login =
            parse_body(br#"{"op": 0, "args": {"user_name": "alice", "user_pwd": "abc123"}}"#)
                .unwrap();
        assert_eq!(
            AuthRequest::parse(&login),
            Ok(AuthRequest::Login {
                user_name: "alice".into(),
                password: "abc123".into()
            })
        );
        let reg = parse_body(br#"{"op": 2, "args": {"user_name": "alice", "user_pwd": "abc123", "user_phone": "13800138000", "user_vcode": "4821", "user_email": "alice@example.com"}}"#).unwrap();
        assert!(
            matches!(AuthRequest::parse(&reg), Ok(AuthRequest::Register { ref code, .. }) if code == "4821")
        );
        let up = parse_body(br#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "file_name": "pics/sub/b.txt", "file_type": 1, "file_size": "2", "file_dirname": "pics"}"#).unwrap();
        assert!(
            matches!(FileRequest::parse(&up), Ok(FileRequest::Upload { size: 2, folder: Some(ref f), .. }) if f == "pics")
        );
        let list =
            parse_body(br#"{"op": 1, "args": {"name": "bob", "password": "xyz789"}, "look": 0}"#)
                .unwrap();
        assert!(matches!(
            FileRequest::parse(&list),
            Ok(FileRequest::List { .. })
        ));
        let chat = parse_body(br#"{"op": 0, "args": {"name": "alice", "password": "abc123"}, "news": "\u4f60\u597d\n"}"#).unwrap();
        assert_eq!(ChatLine::parse(&chat).unwrap().news, "你好\n");
    }

    #[test]
    fn malformed_frames_are_refused() {
        for header in [
            b"abc            ",
            b"               ",
            b"12\0            ",
            b"-5             ",
        ] {
            assert_eq!(parse_header(header), Err(FrameError::BadHeader));
        }
        assert_eq!(
            parse_header(b"999999999999999"),
            Err(FrameError::TooLarge(999_999_999_999_999))
        );
        assert_eq!(parse_body(b"{\"op\": 0"), Err(FrameError::BadJson));
        assert_eq!(parse_body(b"[1]"), Err(FrameError::BadJson));
        let no_args = parse_body(br#"{"op": 0}"#).unwrap();
        assert_eq!(
            AuthRequest::parse(&no_args),
            Err(FrameError::Missing("args"))
        );
        let string_op = parse_body(br#"{"op": "0", "args": {}}"#).unwrap();
        assert_eq!(
            AuthRequest::parse(&string_op),
            Err(FrameError::Missing("op"))
        );
        let other = parse_body(br#"{"op": 7, "args": {}}"#).unwrap();
        assert_eq!(AuthRequest::parse(&other), Err(FrameError::UnknownOp(7)));
    }

    #[test]
    fn decode_frame_waits_for_whole_frames() {
        let mut bytes = frame(&auth_reply(2, 3));
        bytes.extend_from_slice(&frame(&not_found()));
        for cut in 0..35 {
            assert_eq!(decode_frame(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let (used, first) = decode_frame(&bytes).unwrap().unwrap();
        assert_eq!((used, Value::Object(first)), (35, auth_reply(2, 3)));
        let (_, second) = decode_frame(&bytes[used..]).unwrap().unwrap();
        assert_eq!(Value::Object(second), not_found());
        assert_eq!(
            decode_frame(b"99999999       {"),
            Err(FrameError::TooLarge(99_999_999))
        );
        assert_eq!(decode_frame(b"x"), Ok(None));
        assert_eq!(
            decode_frame(b"1x             {"),
            Err(FrameError::BadHeader)
        );
    }

    #[test]
    fn python_escaping_matches_json_dumps() {
        assert_eq!(
            python_json(&Value::from("a\"b\\c\u{1}")),
            r#""a\"b\\c\u0001""#
        );
        assert_eq!(python_json(&Value::from("😀")), r#""\ud83d\ude00""#);
    }
}
