//! What the server sends, encoded byte for byte as the client reads it.

use super::*;

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
