//! Micro-benchmarks of the per-message hot paths that need no network: each bridge codec's
//! decode of a typical client frame and encode of a typical push, and access-token checks.
//!
//! `cargo bench -p rosetta-bench --bench codecs`; kept short (1 s of measurement each).

use std::{hint::black_box, time::Duration};

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use rosetta_auth::{KeyPair, TokenIssuer, TokenVerifier};
use serde_json::json;
use tokio_util::codec::{Decoder as _, Encoder as _};

const TEXT: &str = "hello there, see you at the station at ten";

fn pipe(c: &mut Criterion) {
    use rosetta_bridge_pipe::codec::{Reply, parse};
    let frame = format!("send_message|0|00124|00125|20190905103000|{TEXT}|aB3dE5fG7hJ9kL1m");
    assert!(parse(frame.as_bytes()).is_ok(), "the sample must parse");
    c.bench_function("pipe/decode send_message", |b| {
        b.iter(|| parse(black_box(frame.as_bytes())))
    });
    let push = Reply::PrivateMessage {
        kind: 0,
        from: "00124".into(),
        time: "20190905103000".into(),
        data: TEXT.into(),
    };
    c.bench_function("pipe/encode message push", |b| {
        b.iter(|| black_box(&push).to_bytes())
    });
}

fn imps(c: &mut Criterion) {
    use rosetta_bridge_imps::codec::{ClientMessage, Frame, FrameCodec, ServerMessage};
    let send = ClientMessage::SendMessage {
        user: "alice".into(),
        friend: "bob".into(),
        text: TEXT.into(),
    };
    let mut wire = BytesMut::new();
    FrameCodec
        .encode(send.encode(), &mut wire)
        .expect("a small frame encodes");
    let sample = FrameCodec.decode(&mut wire.clone()).ok().flatten();
    assert!(
        sample.is_some_and(|f| matches!(ClientMessage::decode(&f), Ok(Some(_)))),
        "the sample must decode"
    );
    c.bench_function("imps/decode C_SEND_MSG", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            let frame: Frame = FrameCodec
                .decode(&mut buf)
                .ok()
                .flatten()
                .expect("a whole frame");
            ClientMessage::decode(black_box(&frame))
        })
    });
    let push = ServerMessage::Message {
        from: "alice".into(),
        text: TEXT.into(),
        time: "2026-11-22 10:00:00".into(),
    };
    c.bench_function("imps/encode S_SEND_MSG", |b| {
        b.iter(|| {
            let mut out = BytesMut::new();
            FrameCodec.encode(black_box(&push).encode(), &mut out)
        })
    });
}

fn dpc(c: &mut Criterion) {
    use rosetta_bridge_dpc::codec::{ChatLine, chat_push, decode_frame, frame};
    let wire =
        frame(&json!({"op": 0, "args": {"name": "alice", "password": "secret"}, "news": TEXT}));
    let sample = decode_frame(&wire).ok().flatten();
    assert!(
        sample.is_some_and(|(_, map)| ChatLine::parse(&map).is_ok()),
        "the sample must decode"
    );
    c.bench_function("dpc/decode chat line", |b| {
        b.iter(|| {
            let (_, map) = decode_frame(black_box(&wire))
                .ok()
                .flatten()
                .expect("a whole frame");
            ChatLine::parse(&map)
        })
    });
    c.bench_function("dpc/encode chat push", |b| {
        b.iter(|| frame(&chat_push(black_box("alice"), black_box(TEXT))))
    });
}

fn ourchat(c: &mut Criterion) {
    use rosetta_bridge_ourchat::codec::{Target, decode, text_push};
    let text = json!({"code": 0, "time": 1_763_800_000, "sender": {"ocid": "aB3dE5gH7j", "private_id": "kL9mN1pQ3r"}, "msg": TEXT}).to_string();
    assert!(decode(&text).is_ok(), "the sample must decode");
    c.bench_function("ourchat/decode text", |b| {
        b.iter(|| decode(black_box(&text)))
    });
    let target = Target::User("kL9mN1pQ3r".into());
    c.bench_function("ourchat/encode text push", |b| {
        b.iter(|| text_push(1_763_800_000, 4711, "aB3dE5gH7j", black_box(&target), TEXT))
    });
}

fn cloudchat(c: &mut Criterion) {
    use rosetta_bridge_cloudchat::codec::{
        ContentKind, MessageView, decode, message, message_object,
    };
    let text = json!({"type": "SEND_MESSAGE", "payload": {"tempId": "ae8ca08a-a6de-493a-b18c-20781f5930fd", "senderId": 1, "receiverId": 2, "content": TEXT, "type": "text"}}).to_string();
    assert!(decode(&text).is_ok(), "the sample must decode");
    c.bench_function("cloudchat/decode SEND_MESSAGE", |b| {
        b.iter(|| decode(black_box(&text)))
    });
    c.bench_function("cloudchat/encode message push", |b| {
        b.iter(|| {
            let view = MessageView {
                id: 4711,
                sender_id: 1,
                receiver_id: 2,
                content: black_box(TEXT),
                sent_at_secs: 1_763_800_000,
                read: false,
                kind: ContentKind::Text,
            };
            message("MESSAGE_RECEIVED_OTHER", message_object(&view))
        })
    });
}

fn jwt(c: &mut Criterion) {
    let keys = KeyPair::generate().expect("a key pair");
    let issuer =
        TokenIssuer::new(&keys.private_pem, "rosetta", Duration::from_secs(900)).expect("issuer");
    let verifier = TokenVerifier::new([keys.public_pem.as_str()], "rosetta").expect("verifier");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let (token, _) = issuer.issue(4711, "session-1", now_ms).expect("a token");
    assert!(verifier.verify(&token).is_ok(), "the token must verify");
    c.bench_function("jwt/verify", |b| {
        b.iter(|| verifier.verify(black_box(&token)))
    });
    c.bench_function("jwt/issue", |b| {
        b.iter(|| issuer.issue(black_box(4711), "session-1", now_ms))
    });
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = codecs;
    config = quick();
    targets = pipe, imps, dpc, ourchat, cloudchat, jwt
}
criterion_main!(codecs);
