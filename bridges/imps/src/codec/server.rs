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
        let mut b = Body::default();
        let cmd = match self {
            // The legacy server wrote the int 1 twice; the client reads the first.
            Self::Registered => {
                b.i32(1).i32(1);
                S_REGISTER
            }
            Self::LoggedIn {
                user,
                gender,
                email,
            } => {
                b.string(user).i32(*gender).string(email);
                S_LOGIN_RSP
            }
            Self::Friends(friends) => {
                b.i64(friends.len() as i64);
                for f in friends {
                    b.string(&f.name)
                        .u8(f.status)
                        .string(&f.email)
                        .string(&f.time);
                    b.f64(f.lat_e6).f64(f.lon_e6);
                }
                S_FRIENDLIST_REFURBISH_RSP
            }
            Self::FriendRequest { from } => {
                b.string(from);
                S_ADDFRIEND_REQ
            }
            Self::FriendAnswer { from, accepted } => {
                b.string(from).i32(i32::from(*accepted));
                S_ADDFRIEND_RSP
            }
            Self::Message { from, text, time } => {
                b.string(from).string(text).string(time);
                S_SEND_MSG
            }
            Self::Status { user, status } => {
                b.string(user).u8(*status);
                S_STATUS_NOTIFY
            }
            Self::Error { code, extra } => {
                b.i32(*code);
                if let Some(extra) = extra {
                    b.i32(*extra);
                }
                S_ERROR
            }
            Self::Audio { from, data, time } => {
                b.string(from).bytes(data).string(time);
                S_AUDIO_RSP
            }
            Self::CallInvite { .. }
            | Self::VideoInvite { .. }
            | Self::CallAnswer { .. }
            | Self::VideoAnswer { .. } => return self.encode_call(),
        };
        b.frame(cmd)
    }

    /// A call set-up push (every other push goes through [`Self::encode`]).
    fn encode_call(&self) -> Frame {
        use cmd::*;
        let mut b = Body::default();
        let cmd = match self {
            Self::CallInvite { from, ip, port } => {
                b.string(from).string(ip).i32(*port);
                S_PTP_AUDIO_REQ
            }
            Self::VideoInvite {
                from,
                private_ip,
                private_port,
                public_ip,
                public_port,
            } => {
                b.string(from).string(private_ip).i32(*private_port);
                b.string(public_ip).i32(*public_port);
                S_PTP_VIDEO_REQ
            }
            Self::CallAnswer {
                from,
                accept,
                ip,
                port,
            } => {
                b.string(from).i32(i32::from(*accept)).string(ip).i32(*port);
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
                b.string(from).i32(i32::from(*accept));
                b.string(private_ip).i32(*private_port);
                b.string(public_ip).i32(*public_port);
                S_PTP_VIDEO_RSP
            }
            other => return other.encode(),
        };
        b.frame(cmd)
    }
}
