//! What the client sends: decoding (the bridge's side) and encoding (tests, fuzzing, load).

use super::*;

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

impl ClientMessage {
    /// The leading user name the frame carries: who the client says is acting.
    pub fn sender(&self) -> &str {
        match self {
            Self::Register { user, .. }
            | Self::Login { user, .. }
            | Self::Heartbeat { user, .. }
            | Self::FriendList { user }
            | Self::AddFriend { user, .. }
            | Self::AnswerFriend { user, .. }
            | Self::SendMessage { user, .. }
            | Self::Status { user, .. }
            | Self::Audio { user, .. }
            | Self::CallInvite { user, .. }
            | Self::CallAnswer { user, .. }
            | Self::Image { user, .. } => user,
        }
    }
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
            C_HEARTBEAT_REQ => Self::Heartbeat {
                user,
                fixes: fixes(&mut f)?,
            },
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
                call_answer(user, frame.cmd == C_PTP_VIDEO_RSP, &mut f)?
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
        let mut b = Body::default();
        // Every client frame starts with the sender's name.
        b.string(self.sender());
        let cmd = match self {
            Self::Register {
                password,
                gender,
                email,
                ..
            } => {
                b.string(password).i32(*gender).string(email);
                C_REGISTER
            }
            Self::Login { password, .. } => {
                b.string(password);
                C_LOGIN_REQ
            }
            Self::Heartbeat { fixes, .. } => {
                b.i64(fixes.len() as i64);
                for fix in fixes {
                    b.string(&fix.time).f64(fix.lat_e6).f64(fix.lon_e6);
                }
                C_HEARTBEAT_REQ
            }
            Self::FriendList { .. } => C_FRIENDLIST_REFURBISH_REQ,
            Self::AddFriend { friend, .. } => {
                b.string(friend);
                C_ADDFRIEND_REQ
            }
            Self::AnswerFriend { friend, accept, .. } => {
                b.string(friend).i32(i32::from(*accept));
                C_ADDFRIEND_RSP
            }
            Self::SendMessage { friend, text, .. } => {
                b.string(friend).string(text);
                C_SEND_MSG
            }
            // The client writes the status as a 2-byte Java char.
            Self::Status { status, .. } => {
                b.u8(0).u8(*status);
                C_STATUS_NOTIFY
            }
            Self::Audio { friend, data, .. } => {
                b.string(friend).bytes(data);
                C_AUDIO_REQ
            }
            Self::CallInvite {
                friend,
                video,
                ip,
                port,
                ..
            } => {
                b.string(friend).string(ip).i32(*port);
                audio_or_video(*video, C_PTP_AUDIO_REQ, C_PTP_VIDEO_REQ)
            }
            Self::CallAnswer {
                friend,
                video,
                accept,
                ip,
                port,
                ..
            } => {
                b.string(friend).i32(i32::from(*accept));
                b.string(ip).i32(*port);
                audio_or_video(*video, C_PTP_AUDIO_RSP, C_PTP_VIDEO_RSP)
            }
            Self::Image { friend, .. } => {
                b.string(friend);
                C_IMAGE_REQ
            }
        };
        b.frame(cmd)
    }
}

/// The location fixes of a heartbeat: a count, then each fix.
fn fixes(f: &mut Fields<'_>) -> Result<Vec<Fix>, CodecError> {
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
    Ok(fixes)
}

/// An answer to a call: the friend, yes or no, and the answerer's address.
fn call_answer(user: String, video: bool, f: &mut Fields<'_>) -> Result<ClientMessage, CodecError> {
    let friend = f.string()?;
    let accept = f.i32()? == 1;
    // A client without an address writes neither the address nor the port.
    let (ip, port) = if f.buf.is_empty() {
        (String::new(), 0)
    } else {
        (f.string()?, f.i32()?)
    };
    Ok(ClientMessage::CallAnswer {
        user,
        friend,
        video,
        accept,
        ip,
        port,
    })
}

/// The command of a call frame: the audio one or the video one.
fn audio_or_video(video: bool, audio_cmd: u8, video_cmd: u8) -> u8 {
    if video { video_cmd } else { audio_cmd }
}
