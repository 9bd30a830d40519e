//! The codec against the note's bytes (imps.md §8) and its refusals.

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
fn example_session_account_frames() {
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
}

#[test]
fn example_session_friend_and_chat_frames() {
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
