//! The IMPS bridge over real sockets: the note's example session byte for byte (imps.md §8),
//! registration, idle close, presence, calls, audio and malformed input.

use std::time::Duration;

use rosetta_bridge_imps::codec::{ClientMessage, Fix, cmd};
use rosetta_bridge_kit::settings::ImpsSettings;
use rosetta_testkit::{Backend, TestServer, both_backends};

mod common;

use common::*;

// ---------------------------------------------------------------------------------------------

/// imps.md §8, steps 1–8, replayed byte for byte.
async fn example_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = bridge(&server, 300_000).await;

    // 1. alice registers; a second attempt finds the name taken.
    let mut reg = Client::connect(&bridge).await;
    reg.send_raw(&hex(
        "4f 4b 00 00 00 2b 0f 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 31 32 33 00
         00 00 01 00 00 00 00 00 00 00 06 61 40 78 2e 63 6e",
    ))
    .await;
    assert_eq!(
        reg.recv_raw().await,
        hex("4f 4b 00 00 00 09 10 00 00 00 01 00 00 00 01")
    );
    let mut again = Client::connect(&bridge).await;
    again
        .send_raw(&hex(
            "4f 4b 00 00 00 2b 0f 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 31 32
             33 00 00 00 01 00 00 00 00 00 00 00 06 61 40 78 2e 63 6e",
        ))
        .await;
    assert_eq!(
        again.recv_raw().await,
        hex("4f 4b 00 00 00 09 11 00 00 00 01 00 00 00 00")
    );
    let mut bob_reg = Client::connect(&bridge).await;
    bob_reg
        .send(ClientMessage::Register {
            user: "bob".into(),
            password: "456".into(),
            gender: 1,
            email: "b@x.cn".into(),
        })
        .await;
    assert_eq!(bob_reg.recv_raw().await[6], cmd::S_REGISTER);

    // 2. Wrong password, then alice logs in.
    let mut wrong = Client::connect(&bridge).await;
    wrong
        .send(ClientMessage::Login {
            user: "alice".into(),
            password: "nope".into(),
        })
        .await;
    assert_eq!(
        wrong.recv_raw().await,
        hex("4f 4b 00 00 00 05 11 00 00 00 06")
    );
    let mut alice = Client::connect(&bridge).await;
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 19 01 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 31 32 33",
        ))
        .await;
    assert_eq!(
        alice.recv_raw().await,
        hex(
            "4f 4b 00 00 00 20 02 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 00 00 00
             00 06 61 40 78 2e 63 6e"
        )
    );

    // 3. An empty friend list.
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 0e 05 00 00 00 00 00 00 00 05 61 6c 69 63 65",
        ))
        .await;
    assert_eq!(
        alice.recv_raw().await,
        hex("4f 4b 00 00 00 09 06 00 00 00 00 00 00 00 00")
    );

    // 4. alice adds bob, bob accepts.
    let mut bob = login(&bridge, "bob", "456").await;
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 19 07 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 62 6f 62",
        ))
        .await;
    assert_eq!(
        bob.recv_cmd(cmd::S_ADDFRIEND_REQ).await,
        hex("4f 4b 00 00 00 0e 09 00 00 00 00 00 00 00 05 61 6c 69 63 65")
    );
    bob.send_raw(&hex(
        "4f 4b 00 00 00 1d 08 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 00 00 00 00 05 61 6c 69 63 65
         00 00 00 01",
    ))
    .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ADDFRIEND_RSP).await,
        hex("4f 4b 00 00 00 10 0a 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 01")
    );

    // 5. bob leaves and comes back: alice hears both.
    drop(bob);
    assert_eq!(
        alice.recv_status("bob", 2).await,
        hex("4f 4b 00 00 00 0d 0e 00 00 00 00 00 00 00 03 62 6f 62 02")
    );
    let mut bob = login(&bridge, "bob", "456").await;
    assert_eq!(
        alice.recv_status("bob", 1).await,
        hex("4f 4b 00 00 00 0d 0e 00 00 00 00 00 00 00 03 62 6f 62 01")
    );

    // 6. alice says "hi", then 你好.
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 23 0b 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 62 6f
             62 00 00 00 00 00 00 00 02 68 69",
        ))
        .await;
    let pushed = bob.recv_cmd(cmd::S_SEND_MSG).await;
    let head = hex(
        "4f 4b 00 00 00 33 0c 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 02 68 69 00
         00 00 00 00 00 00 13",
    );
    assert_eq!(pushed[..head.len()], head[..], "{pushed:02x?}");
    let time = std::str::from_utf8(&pushed[head.len()..]).expect("ascii time");
    assert!(is_wall_time(time), "{time}");
    alice
        .send(ClientMessage::SendMessage {
            user: "alice".into(),
            friend: "bob".into(),
            text: "你好".into(),
        })
        .await;
    let pushed = bob.recv_cmd(cmd::S_SEND_MSG).await;
    let mut f = Fields::of(&pushed);
    assert_eq!(f.string(), "alice");
    assert_eq!(f.bytes(), [0xc4, 0xe3, 0xba, 0xc3]);

    // 7. alice's heartbeat: no reply; bob's friend list shows her there, online.
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 41 03 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 01 00 00
             00 00 00 00 00 13 32 30 31 32 2d 30 31 2d 31 34 20 32 30 3a 34 33 3a 31 32 41 7d c8 83 00
             00 00 00 41 9c f5 f0 c0 00 00 00",
        ))
        .await;
    // The entry as the note's example has it, with alice's name, e-mail (friends see each
    // other's) and time.
    let entry = hex(
        "00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 05 61 6c 69 63 65 01 00 00 00 00 00 00 00 06
         61 40 78 2e 63 6e 00 00 00 00 00 00 00 15 32 30 31 32 2d 30 31 2d 31 34 20 32 30 3a 34 33 3a 31 32 2e 30 41
         7d c8 83 00 00 00 00 41 9c f5 f0 c0 00 00 00",
    );
    // The heartbeat has no reply: ask until the bridge has stored it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let list = loop {
        let list = bob.friend_list("bob").await;
        if list[7..] == entry[..] || tokio::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(list[7..], entry[..], "{list:02x?}");
    assert_eq!(list[..7], hex("4f 4b 00 00 00 52 06")[..]);

    // 8. alice leaves the map: bob is told she is offline.
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 10 0d 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 02",
        ))
        .await;
    assert_eq!(
        bob.recv_status("alice", 2).await,
        hex("4f 4b 00 00 00 0f 0e 00 00 00 00 00 00 00 05 61 6c 69 63 65 02")
    );

    // bob goes away: a message to him is answered with error 5.
    drop(bob);
    alice.recv_status("bob", 2).await;
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 23 0b 00 00 00 00 00 00 00 05 61 6c 69 63 65 00 00 00 00 00 00 00 03 62 6f
             62 00 00 00 00 00 00 00 02 68 69",
        ))
        .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 05")
    );
}

both_backends!(example, super::example_session);

/// The legacy server refused a taken user name only (imps.md §3.1): an e-mail already used, or
/// text that is not an address, still registers (without the e-mail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_only_a_taken_name() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server, 300_000).await;
    let registered = hex("4f 4b 00 00 00 09 10 00 00 00 01 00 00 00 01");
    let name_taken = hex("4f 4b 00 00 00 09 11 00 00 00 01 00 00 00 00");
    let attempt = |user: &str, email: &str| ClientMessage::Register {
        user: user.into(),
        password: "pw".into(),
        gender: 1,
        email: email.into(),
    };
    for (user, email, reply) in [
        ("alice", "a@x.cn", &registered),
        ("bob", "a@x.cn", &registered),
        ("carol", "abc", &registered),
        ("bob", "b@x.cn", &name_taken),
        ("alice", "a@x.cn", &name_taken),
    ] {
        let mut c = Client::connect(&bridge).await;
        c.send(attempt(user, email)).await;
        assert_eq!(&c.recv_raw().await, reply, "{user} {email}");
    }
    // bob's account works; the e-mail alice has was not given to him too.
    let mut bob = Client::connect(&bridge).await;
    bob.send(ClientMessage::Login {
        user: "bob".into(),
        password: "pw".into(),
    })
    .await;
    assert_eq!(
        bob.recv_raw().await,
        hex(
            "4f 4b 00 00 00 18 02 00 00 00 00 00 00 00 03 62 6f 62 00 00 00 00 00 00 00 00 00 00 00 00"
        )
    );
    login(&bridge, "carol", "pw").await;
}

/// A connection with nothing read or written for `idle_close_ms` is closed, as the legacy
/// server closed one after 2 minutes (imps.md §1); heartbeats keep a live one open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_heartbeats_keep_one_open() {
    let server = TestServer::start(Backend::Sqlite).await;
    let settings = ImpsSettings {
        idle_close_ms: 1500,
        ..ImpsSettings::default()
    };
    let bridge = bridge_with(&server, settings).await;
    register_user(&bridge, "alice").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut silent = Client::connect(&bridge).await;
    let heartbeat = ClientMessage::Heartbeat {
        user: "alice".into(),
        fixes: Vec::new(),
    };
    // Three seconds, twice the idle limit, with a heartbeat every half second.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        alice.send(heartbeat.clone()).await;
    }
    silent.expect_closed().await;
    alice.friend_list("alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_heartbeats_goes_offline_and_friends_are_told() {
    let server = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.messaging.presence_timeout_ms = 1500;
    })
    .await;
    let bridge = bridge(&server, 3000).await;
    register_user(&bridge, "alice").await;
    register_user(&bridge, "bob").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut bob = login(&bridge, "bob", "pw").await;
    befriend(&mut alice, "alice", &mut bob, "bob").await;
    let heartbeat = ClientMessage::Heartbeat {
        user: "bob".into(),
        fixes: vec![Fix {
            time: "2012-01-14 20:43:12".into(),
            lat_e6: 0.0,
            lon_e6: 0.0,
        }],
    };
    // One heartbeat now that they are friends (bob may have lapsed already on a slow machine;
    // this brings him back), then silence: alice hears he is offline after the timeout.
    bob.send(heartbeat.clone()).await;
    let started = tokio::time::Instant::now();
    alice.recv_status("bob", 2).await;
    assert!(started.elapsed() >= Duration::from_millis(2500));
    // A message to him now gets error 5.
    alice
        .send(ClientMessage::SendMessage {
            user: "alice".into(),
            friend: "bob".into(),
            text: "there?".into(),
        })
        .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 05")
    );
    // His next heartbeat brings him back.
    bob.send(heartbeat).await;
    alice.recv_status("bob", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_audio_and_impersonation() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    register_user(&bridge, "bob").await;
    register_user(&bridge, "eve").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut bob = login(&bridge, "bob", "pw").await;
    let mut eve = login(&bridge, "eve", "pw").await;
    befriend(&mut alice, "alice", &mut bob, "bob").await;
    befriend(&mut alice, "alice", &mut eve, "eve").await;
    drop(eve);
    alice.recv_status("eve", 2).await;

    // Audio call: the real address and the real int32 port are relayed both ways.
    alice
        .send(ClientMessage::CallInvite {
            user: "alice".into(),
            friend: "bob".into(),
            video: false,
            ip: "192.168.1.5".into(),
            port: 1300,
        })
        .await;
    let invite = bob.recv_cmd(cmd::S_PTP_AUDIO_REQ).await;
    let mut f = Fields::of(&invite);
    assert_eq!(
        (f.string(), f.string(), f.i32()),
        ("alice".into(), "192.168.1.5".into(), 1300)
    );
    bob.send(ClientMessage::CallAnswer {
        user: "bob".into(),
        friend: "alice".into(),
        video: false,
        accept: true,
        ip: "10.0.0.2".into(),
        port: 1300,
    })
    .await;
    let answer = alice.recv_cmd(cmd::S_PTP_AUDIO_RSP).await;
    let mut f = Fields::of(&answer);
    assert_eq!(
        (f.string(), f.i32(), f.string(), f.i32()),
        ("bob".into(), 1, "10.0.0.2".into(), 1300)
    );

    // Video call: the public address is the caller's real one, in dotted form.
    alice
        .send(ClientMessage::CallInvite {
            user: "alice".into(),
            friend: "bob".into(),
            video: true,
            ip: "192.168.1.5".into(),
            port: 1300,
        })
        .await;
    let invite = bob.recv_cmd(cmd::S_PTP_VIDEO_REQ).await;
    let mut f = Fields::of(&invite);
    assert_eq!(
        (f.string(), f.string(), f.i32(), f.string(), f.i32()),
        (
            "alice".into(),
            "192.168.1.5".into(),
            1300,
            "127.0.0.1".into(),
            1300
        )
    );
    // A refusal without an address (the client then writes neither address nor port).
    let mut refusal = ClientMessage::CallAnswer {
        user: "bob".into(),
        friend: "alice".into(),
        video: true,
        accept: false,
        ip: String::new(),
        port: 0,
    }
    .encode();
    refusal.body.truncate(refusal.body.len() - 12);
    bob.send_raw(&wire(&refusal)).await;
    let answer = alice.recv_cmd(cmd::S_PTP_VIDEO_RSP).await;
    let mut f = Fields::of(&answer);
    assert_eq!((f.string(), f.i32()), ("bob".into(), 0));

    // A voice clip: 200-byte chunks and "KO", stored through the files service, pushed to bob.
    let clip: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
    for chunk in clip.chunks(200).map(<[u8]>::to_vec).chain([b"KO".to_vec()]) {
        alice
            .send(ClientMessage::Audio {
                user: "alice".into(),
                friend: "bob".into(),
                data: chunk,
            })
            .await;
    }
    let mut received = Vec::new();
    loop {
        let push = bob.recv_cmd(cmd::S_AUDIO_RSP).await;
        let mut f = Fields::of(&push);
        assert_eq!(f.string(), "alice");
        let data = f.bytes().to_vec();
        assert!(is_wall_time(&f.string()));
        if data == b"KO" {
            break;
        }
        assert_eq!(data.len(), 200);
        received.extend(data);
    }
    assert_eq!(received, clip);

    // alice cannot speak for bob: error 3, and nobody hears anything.
    alice
        .send(ClientMessage::SendMessage {
            user: "bob".into(),
            friend: "alice".into(),
            text: "I am bob".into(),
        })
        .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 03")
    );
    // A call to a friend who is not online: error 5; a message to nobody at all: error 2.
    alice
        .send(ClientMessage::CallInvite {
            user: "alice".into(),
            friend: "eve".into(),
            video: false,
            ip: "192.168.1.5".into(),
            port: 1300,
        })
        .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 05")
    );
    alice
        .send(ClientMessage::SendMessage {
            user: "alice".into(),
            friend: "nobody".into(),
            text: "hello?".into(),
        })
        .await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 02")
    );
    // bob got no message from the impersonation attempt: his next frame is the list reply.
    assert_eq!(
        bob.friend_list("bob").await[6],
        cmd::S_FRIENDLIST_REFURBISH_RSP
    );
}

/// Sends a voice clip as the client does: 200-byte chunks, then "KO".
async fn send_clip(c: &mut Client, user: &str, friend: &str, clip: &[u8]) {
    for chunk in clip.chunks(200).chain([&b"KO"[..]]) {
        c.send(ClientMessage::Audio {
            user: user.into(),
            friend: friend.into(),
            data: chunk.to_vec(),
        })
        .await;
    }
}

/// The next clip pushed to `c` (S_AUDIO_RSP chunks up to "KO"), without its sender and time.
async fn recv_clip(c: &mut Client) -> Vec<u8> {
    let mut clip = Vec::new();
    loop {
        let push = c.recv_cmd(cmd::S_AUDIO_RSP).await;
        let mut f = Fields::of(&push);
        f.string();
        let data = f.bytes();
        if data == b"KO" {
            return clip;
        }
        clip.extend_from_slice(data);
    }
}

/// A client cannot pile up voice clips under made-up friend names (imps.md §3.9): empty chunks
/// are ignored, as the legacy server did, and only four clips may be open at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_clips_in_progress_are_bounded() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    register_user(&bridge, "bob").await;
    let mut alice = login(&bridge, "alice", "pw").await;
    let mut bob = login(&bridge, "bob", "pw").await;
    befriend(&mut alice, "alice", &mut bob, "bob").await;
    let chunk = |friend: String, data: &[u8]| ClientMessage::Audio {
        user: "alice".into(),
        friend,
        data: data.to_vec(),
    };

    // Empty chunks to many names open nothing: a clip to bob still goes through.
    for i in 0..20 {
        alice.send(chunk(format!("ghost{i}"), &[])).await;
    }
    send_clip(&mut alice, "alice", "bob", &[7; 400]).await;
    assert_eq!(recv_clip(&mut bob).await, [7; 400]);

    // Four clips left open: a fifth, to bob, is refused. bob hears only the text sent after it.
    for i in 0..4 {
        alice.send(chunk(format!("ghost{i}"), &[1])).await;
    }
    send_clip(&mut alice, "alice", "bob", &[8; 400]).await;
    alice
        .send(ClientMessage::SendMessage {
            user: "alice".into(),
            friend: "bob".into(),
            text: "after".into(),
        })
        .await;
    loop {
        let frame = bob.recv_raw().await;
        assert_ne!(
            frame[6],
            cmd::S_AUDIO_RSP,
            "a clip over the limit was relayed"
        );
        if frame[6] == cmd::S_SEND_MSG {
            assert_eq!(Fields::of(&frame).string(), "alice");
            break;
        }
    }

    // Ending one (to a name nobody has: error 2) frees its place.
    alice.send(chunk("ghost0".into(), b"KO")).await;
    assert_eq!(
        alice.recv_cmd(cmd::S_ERROR).await,
        hex("4f 4b 00 00 00 05 11 00 00 00 02")
    );
    send_clip(&mut alice, "alice", "bob", &[9; 400]).await;
    assert_eq!(recv_clip(&mut bob).await, [9; 400]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bridge = bridge(&server, 300_000).await;
    register_user(&bridge, "alice").await;
    let mut alice = login(&bridge, "alice", "pw").await;

    let bad: [(&str, Vec<u8>); 6] = [
        ("bad tag", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        ("negative length", hex("4f 4b ff ff ff fe 05")),
        ("huge length", hex("4f 4b 7f ff ff ff 05")),
        ("zero length", hex("4f 4b 00 00 00 00")),
        (
            "string past the frame end",
            hex("4f 4b 00 00 00 0e 05 00 00 00 00 00 00 00 40 61 6c 69 63 65"),
        ),
        (
            "invalid GB2312",
            hex(
                "4f 4b 00 00 00 19 01 00 00 00 00 00 00 00 05 ff ff ff ff ff 00 00 00 00 00 00 00 03 31 32 33",
            ),
        ),
    ];
    for (what, bytes) in bad {
        let mut c = Client::connect(&bridge).await;
        c.send_raw(&bytes).await;
        c.expect_closed().await;
        // The logged-in client is still served.
        assert_eq!(
            alice.friend_list("alice").await[6],
            cmd::S_FRIENDLIST_REFURBISH_RSP,
            "after {what}"
        );
    }

    // Unknown commands, whatever their body (a name, none, not a string), and a frame cut in
    // the middle of its header are not errors.
    alice
        .send_raw(&hex(
            "4f 4b 00 00 00 0e 63 00 00 00 00 00 00 00 05 61 6c 69 63 65",
        ))
        .await;
    alice.send_raw(&hex("4f 4b 00 00 00 01 04")).await;
    alice.send_raw(&hex("4f 4b 00 00 00 03 1d ff ff")).await;
    let list = ClientMessage::FriendList {
        user: "alice".into(),
    }
    .encode();
    let bytes = wire(&list);
    alice.send_raw(&bytes[..3]).await;
    tokio::task::yield_now().await;
    alice.send_raw(&bytes[3..]).await;
    assert_eq!(
        alice.recv_raw().await,
        hex("4f 4b 00 00 00 09 06 00 00 00 00 00 00 00 00")
    );

    // Before login nothing but register and login is served: error 3.
    let mut anon = Client::connect(&bridge).await;
    anon.send(ClientMessage::AddFriend {
        user: "alice".into(),
        friend: "bob".into(),
    })
    .await;
    assert_eq!(
        anon.recv_raw().await,
        hex("4f 4b 00 00 00 05 11 00 00 00 03")
    );
}
