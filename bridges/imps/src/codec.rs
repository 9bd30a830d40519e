//! IMPS frames (imps.md §1–§4, dialect A): `'O' 'K'`, a big-endian i32 counting the command
//! byte and the fields, the command byte, then the fields back to back. Strings are a
//! big-endian i64 byte count and GB2312 bytes. Every client frame starts with the sender's user
//! name. Both ends buffer at most 10,240 bytes, so no frame may be larger.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The client's whole input buffer: no larger frame can ever be decoded by it.
pub const MAX_FRAME: usize = 10_240;
const HEADER: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    BadTag,
    BadLength(i32),
    /// A field runs past the end of the frame, or a length is negative or absurd.
    Truncated,
    /// Bytes that are not GB2312.
    Encoding,
    Io(String),
}

impl From<std::io::Error> for CodecError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err.to_string())
    }
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for CodecError {}

/// One frame: command byte and its fields, undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub cmd: u8,
    pub body: Vec<u8>,
}

impl Frame {
    /// Size on the wire, header included.
    pub fn wire_len(&self) -> usize {
        HEADER + 1 + self.body.len()
    }
}

/// Stream reassembly for both directions.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if src.len() >= 2 && &src[..2] != b"OK" {
            return Err(CodecError::BadTag);
        }
        if src.len() < HEADER {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[2], src[3], src[4], src[5]]);
        let body_len = usize::try_from(len).map_err(|_| CodecError::BadLength(len))?;
        if body_len == 0 || HEADER + body_len > MAX_FRAME {
            return Err(CodecError::BadLength(len));
        }
        if src.len() < HEADER + body_len {
            src.reserve(HEADER + body_len - src.len());
            return Ok(None);
        }
        src.advance(HEADER);
        let cmd = src.get_u8();
        let body = src.split_to(body_len - 1).to_vec();
        Ok(Some(Frame { cmd, body }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    /// Refuses a frame the peer's 10,240-byte buffer could never hold.
    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let len =
            i32::try_from(frame.body.len() + 1).map_err(|_| CodecError::BadLength(i32::MAX))?;
        if frame.wire_len() > MAX_FRAME {
            return Err(CodecError::BadLength(len));
        }
        dst.reserve(HEADER + 1 + frame.body.len());
        dst.put_slice(b"OK");
        dst.put_i32(len);
        dst.put_u8(frame.cmd);
        dst.put_slice(&frame.body);
        Ok(())
    }
}

/// Command numbers (identical in the client and the legacy server).
pub mod cmd {
    pub const C_LOGIN_REQ: u8 = 1;
    pub const S_LOGIN_RSP: u8 = 2;
    pub const C_HEARTBEAT_REQ: u8 = 3;
    pub const C_FRIENDLIST_REFURBISH_REQ: u8 = 5;
    pub const S_FRIENDLIST_REFURBISH_RSP: u8 = 6;
    pub const C_ADDFRIEND_REQ: u8 = 7;
    pub const C_ADDFRIEND_RSP: u8 = 8;
    pub const S_ADDFRIEND_REQ: u8 = 9;
    pub const S_ADDFRIEND_RSP: u8 = 10;
    pub const C_SEND_MSG: u8 = 11;
    pub const S_SEND_MSG: u8 = 12;
    pub const C_STATUS_NOTIFY: u8 = 13;
    pub const S_STATUS_NOTIFY: u8 = 14;
    pub const C_REGISTER: u8 = 15;
    pub const S_REGISTER: u8 = 16;
    pub const S_ERROR: u8 = 17;
    pub const C_AUDIO_REQ: u8 = 18;
    pub const S_AUDIO_RSP: u8 = 19;
    pub const C_PTP_AUDIO_REQ: u8 = 20;
    pub const S_PTP_AUDIO_REQ: u8 = 21;
    pub const C_PTP_VIDEO_REQ: u8 = 22;
    pub const S_PTP_VIDEO_REQ: u8 = 23;
    pub const C_PTP_AUDIO_RSP: u8 = 24;
    pub const S_PTP_AUDIO_RSP: u8 = 25;
    pub const C_PTP_VIDEO_RSP: u8 = 26;
    pub const S_PTP_VIDEO_RSP: u8 = 27;
    pub const C_IMAGE_REQ: u8 = 28;

    /// Whether the client sends `cmd`: only these are decoded; others are skipped whole
    /// (the frame length is known), whatever their body.
    pub fn is_client(cmd: u8) -> bool {
        matches!(
            cmd,
            C_LOGIN_REQ
                | C_HEARTBEAT_REQ
                | C_FRIENDLIST_REFURBISH_REQ
                | C_ADDFRIEND_REQ
                | C_ADDFRIEND_RSP
                | C_SEND_MSG
                | C_STATUS_NOTIFY
                | C_REGISTER
                | C_AUDIO_REQ
                | C_PTP_AUDIO_REQ
                | C_PTP_VIDEO_REQ
                | C_PTP_AUDIO_RSP
                | C_PTP_VIDEO_RSP
                | C_IMAGE_REQ
        )
    }

    /// The command's name for counters and spans.
    pub fn name(cmd: u8) -> &'static str {
        match cmd {
            C_LOGIN_REQ => "C_LOGIN_REQ",
            S_LOGIN_RSP => "S_LOGIN_RSP",
            C_HEARTBEAT_REQ => "C_HEARTBEAT_REQ",
            4 => "S_HEARTBEAT_RSP",
            C_FRIENDLIST_REFURBISH_REQ => "C_FRIENDLIST_REFURBISH_REQ",
            S_FRIENDLIST_REFURBISH_RSP => "S_FRIENDLIST_REFURBISH_RSP",
            C_ADDFRIEND_REQ => "C_ADDFRIEND_REQ",
            C_ADDFRIEND_RSP => "C_ADDFRIEND_RSP",
            S_ADDFRIEND_REQ => "S_ADDFRIEND_REQ",
            S_ADDFRIEND_RSP => "S_ADDFRIEND_RSP",
            C_SEND_MSG => "C_SEND_MSG",
            S_SEND_MSG => "S_SEND_MSG",
            C_STATUS_NOTIFY => "C_STATUS_NOTIFY",
            S_STATUS_NOTIFY => "S_STATUS_NOTIFY",
            C_REGISTER => "C_REGISTER",
            S_REGISTER => "S_REGISTER",
            S_ERROR => "S_ERROR",
            C_AUDIO_REQ => "C_AUDIO_REQ",
            S_AUDIO_RSP => "S_AUDIO_RSP",
            C_PTP_AUDIO_REQ => "C_PTP_AUDIO_REQ",
            S_PTP_AUDIO_REQ => "S_PTP_AUDIO_REQ",
            C_PTP_VIDEO_REQ => "C_PTP_VIDEO_REQ",
            S_PTP_VIDEO_REQ => "S_PTP_VIDEO_REQ",
            C_PTP_AUDIO_RSP => "C_PTP_AUDIO_RSP",
            S_PTP_AUDIO_RSP => "S_PTP_AUDIO_RSP",
            C_PTP_VIDEO_RSP => "C_PTP_VIDEO_RSP",
            S_PTP_VIDEO_RSP => "S_PTP_VIDEO_RSP",
            C_IMAGE_REQ => "C_IMAGE_REQ",
            29 => "S_IMAGE_RSP",
            _ => "unknown",
        }
    }
}

/// Status numbers on the wire.
pub const ONLINE: u8 = 1;
pub const OFFLINE: u8 = 2;
/// Present but hidden (the client's `HIDE`).
pub const HIDE: u8 = 3;

/// The client cuts voice clips into chunks of exactly this size.
pub const AUDIO_CHUNK: usize = 200;

/// The end-of-clip marker of an audio stream.
pub const AUDIO_END: &[u8] = b"KO";

/// Reads fields off a frame body.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| CodecError::Truncated)?,
        ))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| CodecError::Truncated)?,
        ))
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        Ok(f64::from_be_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| CodecError::Truncated)?,
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(self.i64()?).map_err(|_| CodecError::Truncated)?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        decode_gb2312(self.bytes()?)
    }
}

/// GB2312 bytes to text: ASCII, or two bytes in 0xA1..=0xFE (what the client's encoder can
/// write). GBK's decoder does the mapping; anything else is refused rather than replaced, so
/// that decoding and [`encode_gb2312`] are each other's inverse.
pub fn decode_gb2312(bytes: &[u8]) -> Result<String, CodecError> {
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        rest = match (first, tail) {
            (0..=0x7F, _) => tail,
            (0xA1..=0xF7, [0xA1..=0xFE, tail @ ..]) => tail,
            _ => return Err(CodecError::Encoding),
        };
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
        .ok_or(CodecError::Encoding)
}

/// Text to GB2312 bytes. A character GB2312 cannot hold becomes `?`, as Java's encoder (the
/// client's) writes unmappable characters.
pub fn encode_gb2312(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
            continue;
        }
        let (encoded, _, unmappable) = encoding_rs::GBK.encode(c.encode_utf8(&mut buf));
        // GB2312 proper: both bytes in 0xA1..=0xFE (GBK extends past that range).
        let in_gb2312 = !unmappable
            && encoded.len() == 2
            && (0xA1..=0xF7).contains(&encoded[0])
            && (0xA1..=0xFE).contains(&encoded[1]);
        if in_gb2312 {
            out.extend_from_slice(&encoded);
        } else {
            out.push(b'?');
        }
    }
    out
}

/// A location fix of a heartbeat: the client's time text and micro-degree doubles.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub time: String,
    pub lat_e6: f64,
    pub lon_e6: f64,
}

/// What the client sends. `user` is the leading name every client frame carries.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Register {
        user: String,
        password: String,
        gender: i32,
        email: String,
    },
    Login {
        user: String,
        password: String,
    },
    Heartbeat {
        user: String,
        fixes: Vec<Fix>,
    },
    FriendList {
        user: String,
    },
    AddFriend {
        user: String,
        friend: String,
    },
    AnswerFriend {
        user: String,
        friend: String,
        accept: bool,
    },
    SendMessage {
        user: String,
        friend: String,
        text: String,
    },
    /// Sent with OFFLINE when the user leaves; the status is a 2-byte Java char (a 1-byte form
    /// from the seed document is accepted too).
    Status {
        user: String,
        status: u8,
    },
    /// One 200-byte chunk of a clip, or [`AUDIO_END`].
    Audio {
        user: String,
        friend: String,
        data: Vec<u8>,
    },
    CallInvite {
        user: String,
        friend: String,
        video: bool,
        ip: String,
        port: i32,
    },
    CallAnswer {
        user: String,
        friend: String,
        video: bool,
        accept: bool,
        ip: String,
        port: i32,
    },
    Image {
        user: String,
        friend: String,
    },
}

/// Heartbeats carry a count of fixes; cap it so a hostile count cannot allocate.
const MAX_FIXES: i64 = 64;

impl ClientMessage {
    pub fn decode(frame: &Frame) -> Result<Option<Self>, CodecError> {
        use cmd::*;
        if !is_client(frame.cmd) {
            return Ok(None);
        }
        let mut f = Fields { buf: &frame.body };
        let user = f.string()?;
        Ok(Some(match frame.cmd {
            C_REGISTER => Self::Register {
                user,
                password: f.string()?,
                gender: f.i32()?,
                email: f.string()?,
            },
            C_LOGIN_REQ => Self::Login {
                user,
                password: f.string()?,
            },
            C_HEARTBEAT_REQ => {
                let count = f.i64()?;
                if !(0..=MAX_FIXES).contains(&count) {
                    return Err(CodecError::Truncated);
                }
                let mut fixes = Vec::new();
                for _ in 0..count {
                    fixes.push(Fix {
                        time: f.string()?,
                        lat_e6: f.f64()?,
                        lon_e6: f.f64()?,
                    });
                }
                Self::Heartbeat { user, fixes }
            }
            C_FRIENDLIST_REFURBISH_REQ => Self::FriendList { user },
            C_ADDFRIEND_REQ => Self::AddFriend {
                user,
                friend: f.string()?,
            },
            C_ADDFRIEND_RSP => Self::AnswerFriend {
                user,
                friend: f.string()?,
                accept: f.i32()? == 1,
            },
            C_SEND_MSG => Self::SendMessage {
                user,
                friend: f.string()?,
                text: f.string()?,
            },
            C_STATUS_NOTIFY => {
                let status = match f.buf {
                    [0, s, ..] | [s] => *s,
                    _ => return Err(CodecError::Truncated),
                };
                Self::Status { user, status }
            }
            C_AUDIO_REQ => Self::Audio {
                user,
                friend: f.string()?,
                data: f.bytes()?.to_vec(),
            },
            C_PTP_AUDIO_REQ | C_PTP_VIDEO_REQ => Self::CallInvite {
                user,
                friend: f.string()?,
                video: frame.cmd == C_PTP_VIDEO_REQ,
                ip: f.string()?,
                port: f.i32()?,
            },
            C_PTP_AUDIO_RSP | C_PTP_VIDEO_RSP => {
                let friend = f.string()?;
                let accept = f.i32()? == 1;
                // A client without an address writes neither the address nor the port.
                let (ip, port) = if f.buf.is_empty() {
                    (String::new(), 0)
                } else {
                    (f.string()?, f.i32()?)
                };
                Self::CallAnswer {
                    user,
                    friend,
                    video: frame.cmd == C_PTP_VIDEO_RSP,
                    accept,
                    ip,
                    port,
                }
            }
            C_IMAGE_REQ => Self::Image {
                user,
                friend: f.string()?,
            },
            _ => return Ok(None),
        }))
    }
}

impl ClientMessage {
    /// The frame the real client writes for this message (tests, benchmarks, fuzzing).
    pub fn encode(&self) -> Frame {
        use cmd::*;
        let mut b = Vec::new();
        let cmd = match self {
            Self::Register {
                user,
                password,
                gender,
                email,
            } => {
                put_string(&mut b, user);
                put_string(&mut b, password);
                b.extend_from_slice(&gender.to_be_bytes());
                put_string(&mut b, email);
                C_REGISTER
            }
            Self::Login { user, password } => {
                put_string(&mut b, user);
                put_string(&mut b, password);
                C_LOGIN_REQ
            }
            Self::Heartbeat { user, fixes } => {
                put_string(&mut b, user);
                b.extend_from_slice(&(fixes.len() as i64).to_be_bytes());
                for fix in fixes {
                    put_string(&mut b, &fix.time);
                    b.extend_from_slice(&fix.lat_e6.to_be_bytes());
                    b.extend_from_slice(&fix.lon_e6.to_be_bytes());
                }
                C_HEARTBEAT_REQ
            }
            Self::FriendList { user } => {
                put_string(&mut b, user);
                C_FRIENDLIST_REFURBISH_REQ
            }
            Self::AddFriend { user, friend } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                C_ADDFRIEND_REQ
            }
            Self::AnswerFriend {
                user,
                friend,
                accept,
            } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                b.extend_from_slice(&i32::from(*accept).to_be_bytes());
                C_ADDFRIEND_RSP
            }
            Self::SendMessage { user, friend, text } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                put_string(&mut b, text);
                C_SEND_MSG
            }
            Self::Status { user, status } => {
                put_string(&mut b, user);
                b.extend_from_slice(&[0, *status]);
                C_STATUS_NOTIFY
            }
            Self::Audio { user, friend, data } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                b.extend_from_slice(&(data.len() as i64).to_be_bytes());
                b.extend_from_slice(data);
                C_AUDIO_REQ
            }
            Self::CallInvite {
                user,
                friend,
                video,
                ip,
                port,
            } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                put_string(&mut b, ip);
                b.extend_from_slice(&port.to_be_bytes());
                if *video {
                    C_PTP_VIDEO_REQ
                } else {
                    C_PTP_AUDIO_REQ
                }
            }
            Self::CallAnswer {
                user,
                friend,
                video,
                accept,
                ip,
                port,
            } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                b.extend_from_slice(&i32::from(*accept).to_be_bytes());
                put_string(&mut b, ip);
                b.extend_from_slice(&port.to_be_bytes());
                if *video {
                    C_PTP_VIDEO_RSP
                } else {
                    C_PTP_AUDIO_RSP
                }
            }
            Self::Image { user, friend } => {
                put_string(&mut b, user);
                put_string(&mut b, friend);
                C_IMAGE_REQ
            }
        };
        Frame { cmd, body: b }
    }
}

/// A friend-list entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Friend {
    pub name: String,
    pub status: u8,
    pub email: String,
    /// Time of the last location, `yyyy-MM-dd HH:mm:ss.0`, or empty.
    pub time: String,
    pub lat_e6: f64,
    pub lon_e6: f64,
}

/// What the server sends. Never S_HEARTBEAT_RSP (the client would stall for 20 s).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Registered,
    LoggedIn {
        user: String,
        gender: i32,
        email: String,
    },
    Friends(Vec<Friend>),
    FriendRequest {
        from: String,
    },
    FriendAnswer {
        from: String,
        accepted: bool,
    },
    Message {
        from: String,
        text: String,
        time: String,
    },
    Status {
        user: String,
        status: u8,
    },
    /// `extra` follows only after a registration failure.
    Error {
        code: i32,
        extra: Option<i32>,
    },
    /// One chunk of a voice clip (or [`AUDIO_END`]); the shipped client ignores it.
    Audio {
        from: String,
        data: Vec<u8>,
        time: String,
    },
    CallInvite {
        from: String,
        ip: String,
        port: i32,
    },
    VideoInvite {
        from: String,
        private_ip: String,
        private_port: i32,
        public_ip: String,
        public_port: i32,
    },
    CallAnswer {
        from: String,
        accept: bool,
        ip: String,
        port: i32,
    },
    VideoAnswer {
        from: String,
        accept: bool,
        private_ip: String,
        private_port: i32,
        public_ip: String,
        public_port: i32,
    },
}

/// Error codes the client knows.
pub mod error {
    pub const USER_EXISTS: i32 = 1;
    pub const NO_SUCH_USER: i32 = 2;
    pub const NOT_ALLOWED: i32 = 3;
    pub const ALREADY_LOGGED_IN: i32 = 4;
    pub const OFFLINE: i32 = 5;
    pub const BAD_CREDENTIALS: i32 = 6;
    pub const ELSEWHERE: i32 = 7;
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    let bytes = encode_gb2312(text);
    out.extend_from_slice(&(bytes.len() as i64).to_be_bytes());
    out.extend_from_slice(&bytes);
}

impl ServerMessage {
    pub fn encode(&self) -> Frame {
        use cmd::*;
        let mut b = Vec::new();
        let cmd = match self {
            Self::Registered => {
                // The legacy server wrote the int 1 twice; the client reads the first.
                b.extend_from_slice(&1i32.to_be_bytes());
                b.extend_from_slice(&1i32.to_be_bytes());
                S_REGISTER
            }
            Self::LoggedIn {
                user,
                gender,
                email,
            } => {
                put_string(&mut b, user);
                b.extend_from_slice(&gender.to_be_bytes());
                put_string(&mut b, email);
                S_LOGIN_RSP
            }
            Self::Friends(friends) => {
                b.extend_from_slice(&(friends.len() as i64).to_be_bytes());
                for f in friends {
                    put_string(&mut b, &f.name);
                    b.push(f.status);
                    put_string(&mut b, &f.email);
                    put_string(&mut b, &f.time);
                    b.extend_from_slice(&f.lat_e6.to_be_bytes());
                    b.extend_from_slice(&f.lon_e6.to_be_bytes());
                }
                S_FRIENDLIST_REFURBISH_RSP
            }
            Self::FriendRequest { from } => {
                put_string(&mut b, from);
                S_ADDFRIEND_REQ
            }
            Self::FriendAnswer { from, accepted } => {
                put_string(&mut b, from);
                b.extend_from_slice(&i32::from(*accepted).to_be_bytes());
                S_ADDFRIEND_RSP
            }
            Self::Message { from, text, time } => {
                put_string(&mut b, from);
                put_string(&mut b, text);
                put_string(&mut b, time);
                S_SEND_MSG
            }
            Self::Status { user, status } => {
                put_string(&mut b, user);
                b.push(*status);
                S_STATUS_NOTIFY
            }
            Self::Error { code, extra } => {
                b.extend_from_slice(&code.to_be_bytes());
                if let Some(extra) = extra {
                    b.extend_from_slice(&extra.to_be_bytes());
                }
                S_ERROR
            }
            Self::Audio { from, data, time } => {
                put_string(&mut b, from);
                b.extend_from_slice(&(data.len() as i64).to_be_bytes());
                b.extend_from_slice(data);
                put_string(&mut b, time);
                S_AUDIO_RSP
            }
            Self::CallInvite { from, ip, port } => {
                put_string(&mut b, from);
                put_string(&mut b, ip);
                b.extend_from_slice(&port.to_be_bytes());
                S_PTP_AUDIO_REQ
            }
            Self::VideoInvite {
                from,
                private_ip,
                private_port,
                public_ip,
                public_port,
            } => {
                put_string(&mut b, from);
                put_string(&mut b, private_ip);
                b.extend_from_slice(&private_port.to_be_bytes());
                put_string(&mut b, public_ip);
                b.extend_from_slice(&public_port.to_be_bytes());
                S_PTP_VIDEO_REQ
            }
            Self::CallAnswer {
                from,
                accept,
                ip,
                port,
            } => {
                put_string(&mut b, from);
                b.extend_from_slice(&i32::from(*accept).to_be_bytes());
                put_string(&mut b, ip);
                b.extend_from_slice(&port.to_be_bytes());
                S_PTP_AUDIO_RSP
            }
            Self::VideoAnswer {
                from,
                accept,
                private_ip,
                private_port,
                public_ip,
                public_port,
            } => {
                put_string(&mut b, from);
                b.extend_from_slice(&i32::from(*accept).to_be_bytes());
                put_string(&mut b, private_ip);
                b.extend_from_slice(&private_port.to_be_bytes());
                put_string(&mut b, public_ip);
                b.extend_from_slice(&public_port.to_be_bytes());
                S_PTP_VIDEO_RSP
            }
        };
        Frame { cmd, body: b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn wire(message: &ServerMessage) -> Vec<u8> {
        let mut out = BytesMut::new();
        FrameCodec.encode(message.encode(), &mut out).unwrap();
        out.to_vec()
    }

    fn read(bytes: &[u8]) -> ClientMessage {
        let mut buf = BytesMut::from(bytes);
        let frame = FrameCodec.decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        ClientMessage::decode(&frame).unwrap().unwrap()
    }

    #[test]
    fn example_session_client_frames() {
        let register = hex(
            "4f 4b 00 00 00 2b 0f 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 31 32 33 00 00 00 01 00 00 00 00 00 00 00 06 61 40 78 2e 63 6e",
        );
        assert_eq!(
            read(&register),
            ClientMessage::Register {
                user: "alice".into(),
                password: "123".into(),
                gender: 1,
                email: "a@x.cn".into()
            }
        );
        let heartbeat = hex(
            "4f 4b 00 00 00 41 03 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 13 32 30 31 32 2d 30 31 2d 31 34 20 32 30 3a 34 33 3a 31 32 41 7d c8 83 00 00 00 00 41 9c f5 f0 c0 00 00 00",
        );
        assert_eq!(
            read(&heartbeat),
            ClientMessage::Heartbeat {
                user: "alice".into(),
                fixes: vec![Fix {
                    time: "2012-01-14 20:43:12".into(),
                    lat_e6: 31_230_000.0,
                    lon_e6: 121_470_000.0
                }]
            }
        );
        let answer = hex(
            "4f 4b 00 00 00 1d 08 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 01",
        );
        assert_eq!(
            read(&answer),
            ClientMessage::AnswerFriend {
                user: "bob".into(),
                friend: "alice".into(),
                accept: true
            }
        );
        let leave = hex("4f 4b 00 00 00 10 0d 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 02");
        assert_eq!(
            read(&leave),
            ClientMessage::Status {
                user: "alice".into(),
                status: OFFLINE
            }
        );
        let send = hex(
            "4f 4b 00 00 00 23 0b 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 00 00 00 00 02 68 69",
        );
        assert_eq!(
            read(&send),
            ClientMessage::SendMessage {
                user: "alice".into(),
                friend: "bob".into(),
                text: "hi".into()
            }
        );
    }

    #[test]
    fn example_session_server_frames() {
        assert_eq!(
            wire(&ServerMessage::Registered),
            hex("4f 4b 00 00 00 09 10 00 00 00 01 00 00 00 01")
        );
        assert_eq!(
            wire(&ServerMessage::Error {
                code: error::USER_EXISTS,
                extra: Some(0)
            }),
            hex("4f 4b 00 00 00 09 11 00 00 00 01 00 00 00 00")
        );
        assert_eq!(
            wire(&ServerMessage::LoggedIn {
                user: "alice".into(),
                gender: 0,
                email: "a@x.cn".into()
            }),
            hex(
                "4f 4b 00 00 00 20 02 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 00 00 00 00 06 61 40 78 2e 63 6e"
            )
        );
        assert_eq!(
            wire(&ServerMessage::Error {
                code: error::BAD_CREDENTIALS,
                extra: None
            }),
            hex("4f 4b 00 00 00 05 11 00 00 00 06")
        );
        assert_eq!(
            wire(&ServerMessage::Friends(vec![])),
            hex("4f 4b 00 00 00 09 06 00 00 00 00 00 00 00 00")
        );
        let bob = Friend {
            name: "bob".into(),
            status: ONLINE,
            email: "b@x.cn".into(),
            time: "2012-01-14 20:40:00.0".into(),
            lat_e6: 31_230_000.0,
            lon_e6: 121_470_000.0,
        };
        assert_eq!(
            wire(&ServerMessage::Friends(vec![bob])),
            hex(
                "4f 4b 00 00 00 50 06 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 03 62 6f 62 01 00 00 00 00 00 00 00 06 62 40 78 2e 63 6e 00 00 00 00 00 00 00 15 32 30 31 32 2d 30 31 2d 31 34 20 32 30 3a 34 30 3a 30 30 2e 30 41 7d c8 83 00 00 00 00 41 9c f5 f0 c0 00 00 00"
            )
        );
        assert_eq!(
            wire(&ServerMessage::FriendRequest {
                from: "alice".into()
            }),
            hex("4f 4b 00 00 00 0e 09 00 00 00 00 00 00 00 05 61 6c 69 63 65")
        );
        assert_eq!(
            wire(&ServerMessage::FriendAnswer {
                from: "bob".into(),
                accepted: true
            }),
            hex("4f 4b 00 00 00 10 0a 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 01")
        );
        assert_eq!(
            wire(&ServerMessage::Status {
                user: "bob".into(),
                status: ONLINE
            }),
            hex("4f 4b 00 00 00 0d 0e 00 00 00 00 00 00 00 03 62 6f 62 01")
        );
        assert_eq!(
            wire(&ServerMessage::Message {
                from: "alice".into(),
                text: "hi".into(),
                time: "2012-01-14 20:43:12".into()
            }),
            hex(
                "4f 4b 00 00 00 33 0c 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 02 68 69 00 00 00 00 00 00 00 13 32 30 31 32 2d 30 31 2d 31 34 20 32 30 3a 34 33 3a 31 32"
            )
        );
        assert_eq!(
            wire(&ServerMessage::Error {
                code: error::OFFLINE,
                extra: None
            }),
            hex("4f 4b 00 00 00 05 11 00 00 00 05")
        );
    }

    #[test]
    fn gb2312_text_and_what_it_cannot_hold() {
        assert_eq!(encode_gb2312("你好"), vec![0xc4, 0xe3, 0xba, 0xc3]);
        assert_eq!(decode_gb2312(&[0xc4, 0xe3, 0xba, 0xc3]).unwrap(), "你好");
        // Emoji and characters outside GB2312 (here one only GBK has) become '?'.
        assert_eq!(encode_gb2312("a😀丂"), b"a??".to_vec());
        assert_eq!(decode_gb2312(&[0xc4]), Err(CodecError::Encoding));
        // GBK-only bytes (丂 is 81 40) and the lone 0x80 are not GB2312.
        assert_eq!(decode_gb2312(&[0x81, 0x40]), Err(CodecError::Encoding));
        assert_eq!(decode_gb2312(&[0x80]), Err(CodecError::Encoding));
    }

    #[test]
    fn client_messages_round_trip_and_alternative_forms() {
        let all = [
            ClientMessage::Login {
                user: "小明".into(),
                password: "123".into(),
            },
            ClientMessage::AddFriend {
                user: "a".into(),
                friend: "b".into(),
            },
            ClientMessage::Audio {
                user: "a".into(),
                friend: "b".into(),
                data: AUDIO_END.to_vec(),
            },
            ClientMessage::CallInvite {
                user: "a".into(),
                friend: "b".into(),
                video: true,
                ip: "fe80::1".into(),
                port: 1300,
            },
            ClientMessage::CallAnswer {
                user: "a".into(),
                friend: "b".into(),
                video: false,
                accept: true,
                ip: "10.0.0.2".into(),
                port: 1300,
            },
            ClientMessage::Image {
                user: "a".into(),
                friend: "b".into(),
            },
        ];
        for message in all {
            assert_eq!(ClientMessage::decode(&message.encode()), Ok(Some(message)));
        }
        // The seed's 1-byte status.
        let seed = Frame {
            cmd: cmd::C_STATUS_NOTIFY,
            body: hex("00 00 00 00 00 00 00 01 61 02"),
        };
        assert_eq!(
            ClientMessage::decode(&seed),
            Ok(Some(ClientMessage::Status {
                user: "a".into(),
                status: OFFLINE
            }))
        );
        // A call answer without address and port.
        let bare = Frame {
            cmd: cmd::C_PTP_VIDEO_RSP,
            body: hex("00 00 00 00 00 00 00 01 62 00 00 00 00 00 00 00 01 61 00 00 00 00"),
        };
        assert_eq!(
            ClientMessage::decode(&bare),
            Ok(Some(ClientMessage::CallAnswer {
                user: "b".into(),
                friend: "a".into(),
                video: true,
                accept: false,
                ip: String::new(),
                port: 0
            }))
        );
    }

    #[test]
    fn audio_push_layout_and_the_frame_cap() {
        assert_eq!(
            wire(&ServerMessage::Audio {
                from: "a".into(),
                data: AUDIO_END.to_vec(),
                time: "t".into()
            }),
            hex(
                "4f 4b 00 00 00 1d 13 00 00 00 00 00 00 00 01 61 00 00 00 00 00 00 00 02 4b 4f 00 00 00 00 00 00 00 01 74"
            )
        );
        let huge = Frame {
            cmd: cmd::S_SEND_MSG,
            body: vec![0; MAX_FRAME],
        };
        assert_eq!(
            FrameCodec.encode(huge, &mut BytesMut::new()),
            Err(CodecError::BadLength(MAX_FRAME as i32 + 1))
        );
    }

    #[test]
    fn stream_reassembly_and_refusals() {
        let frame = hex("4f 4b 00 00 00 0e 05 00 00 00 00 00 00 00 05 61 6c 69 63 65");
        let mut buf = BytesMut::new();
        for (i, byte) in frame.iter().enumerate() {
            buf.put_u8(*byte);
            let got = FrameCodec.decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == frame.len() - 1);
        }
        // Two frames in one read.
        let mut two = BytesMut::from(&[frame.clone(), frame.clone()].concat()[..]);
        assert!(FrameCodec.decode(&mut two).unwrap().is_some());
        assert!(FrameCodec.decode(&mut two).unwrap().is_some());

        assert_eq!(
            FrameCodec.decode(&mut BytesMut::from(&b"XX\0\0\0\x01\x05"[..])),
            Err(CodecError::BadTag)
        );
        assert_eq!(
            FrameCodec.decode(&mut BytesMut::from(&hex("4f 4b ff ff ff ff 05")[..])),
            Err(CodecError::BadLength(-1))
        );
        assert_eq!(
            FrameCodec.decode(&mut BytesMut::from(&hex("4f 4b 00 00 28 00 05")[..])),
            Err(CodecError::BadLength(10240))
        );
        // A string longer than its frame.
        let long = Frame {
            cmd: cmd::C_LOGIN_REQ,
            body: hex("00 00 00 00 00 00 00 ff 61"),
        };
        assert_eq!(ClientMessage::decode(&long), Err(CodecError::Truncated));
        let negative = Frame {
            cmd: cmd::C_LOGIN_REQ,
            body: hex("ff ff ff ff ff ff ff ff"),
        };
        assert_eq!(ClientMessage::decode(&negative), Err(CodecError::Truncated));
        let huge_count = Frame {
            cmd: cmd::C_HEARTBEAT_REQ,
            body: hex("00 00 00 00 00 00 00 00 7f ff ff ff ff ff ff ff"),
        };
        assert_eq!(
            ClientMessage::decode(&huge_count),
            Err(CodecError::Truncated)
        );
        // Unknown commands are skipped, not errors.
        let unknown = Frame {
            cmd: 99,
            body: hex("00 00 00 00 00 00 00 00"),
        };
        assert_eq!(ClientMessage::decode(&unknown), Ok(None));
        // Whatever their body: none, or one that does not start with a string.
        for (cmd, body) in [(4, vec![]), (29, hex("ff ff")), (99, hex("80 00 00 00"))] {
            let frame = Frame { cmd, body };
            assert_eq!(ClientMessage::decode(&frame), Ok(None), "cmd {cmd}");
        }
    }
}
