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

/// Writes the fields of a frame body, in the order the peer reads them.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    /// A GB2312 string: its byte count as an i64, then the bytes.
    fn string(&mut self, text: &str) -> &mut Self {
        self.bytes(&encode_gb2312(text))
    }

    /// A byte string: its length as an i64, then the bytes.
    fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.i64(data.len() as i64);
        self.0.extend_from_slice(data);
        self
    }

    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    fn i32(&mut self, value: i32) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn i64(&mut self, value: i64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn f64(&mut self, value: f64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn frame(self, cmd: u8) -> Frame {
        Frame { cmd, body: self.0 }
    }
}

mod client;
mod server;

pub use client::{ClientMessage, Fix};
pub use server::{Friend, ServerMessage, error};

#[cfg(test)]
mod tests;
