//! The note's example session (cloudchat.md §9), frame by frame, over WebSocket and over
//! HTTP + HDL_INFO. Ids, tokens and times are the server's, so they are read from the replies
//! and substituted into the note's frames.

mod common;

use common::{Bridge, Ws, assert_ctime, assert_token, js, payload, post, register};
use rosetta_testkit::{Backend, TestServer};

async fn websocket_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;

    // bob registered earlier; his browser kept the token.
    let (bob, bob_token) = register(addr, "bob", "secret2").await;
    assert_token(&bob_token);

    // alice registers (the socket is open from app start)
    let mut a = Ws::connect(addr).await;
    let reply = a
        .ask(r#"{"type":"REGISTER","payload":{"username":"alice","password":"secret1","email":"alice@example.com"}}"#)
        .await;
    let p = payload(&reply, "REGISTER_SUCCESS");
    let alice = p["userId"].as_i64().expect("userId");
    let alice_token = p["token"].as_str().expect("token").to_owned();
    assert_token(&alice_token);
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"REGISTER_SUCCESS","payload":{{"userId":{alice},"username":"alice","email":"alice@example.com","avatar":"default.png","token":{}}}}}"#,
            js(&alice_token)
        )
    );
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
        ))
        .await,
        r#"{"type":"CONTACTS_LOADED","payload":{"contacts":[]}}"#
    );

    // bob auto-logs in with the stored token; a new token comes back
    let mut b = Ws::connect(addr).await;
    let reply = b
        .ask(&format!(
            r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"bob"}}}}"#,
            js(&bob_token)
        ))
        .await;
    let new_bob_token = payload(&reply, "LOGIN_SUCCESS")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_token(&new_bob_token);
    assert_ne!(new_bob_token, bob_token, "the token rotates on every login");
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"LOGIN_SUCCESS","payload":{{"userId":{bob},"username":"bob","email":"bob@example.com","avatar":"default.png","token":{}}}}}"#,
            js(&new_bob_token)
        )
    );
    assert_eq!(
        b.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{bob}}}}}"#
        ))
        .await,
        r#"{"type":"CONTACTS_LOADED","payload":{"contacts":[]}}"#
    );

    // a password login failure
    assert_eq!(
        a.ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"wrong"}}"#)
            .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"密码错误"}}"#
    );
    assert_eq!(
        a.ask(r#"{"type":"LOGIN","payload":{"username":"nobody","password":"wrong"}}"#)
            .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"用户不存在"}}"#
    );

    // alice searches for bob (not yet a contact, so his presence is not shown) and asks him
    assert_eq!(
        a.ask(r#"{"type":"SEARCH_FOR_USER_BY_NAME","payload":{"username":"bob"}}"#)
            .await,
        format!(
            r#"{{"type":"SEARCH_FOR_USER_RESULT","payload":{{"users":[{{"contactId":{bob},"username":"bob","avatar":"default.png","online":false}}]}}}}"#
        )
    );
    let reply = a
        .ask(&format!(
            r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":-1,"requesterId":{alice},"requesterUsername":"alice","requesterAvatar":"default.png","targetId":{bob},"targetUsername":"bob","targetAvatar":"default.png","status":"pending"}}}}"#
        ))
        .await;
    let fr = payload(&reply, "FRIEND_REQUEST_ADDED")["id"]
        .as_i64()
        .expect("request id");
    let fr_object = format!(
        r#"{{"id":{fr},"requesterId":{alice},"targetId":{bob},"requesterUsername":"alice","targetUsername":"bob","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}}"#
    );
    assert_eq!(
        reply,
        format!(r#"{{"type":"FRIEND_REQUEST_ADDED","payload":{fr_object}}}"#)
    );
    assert_eq!(
        b.recv().await,
        format!(r#"{{"type":"ADD_FRIEND_REQUEST","payload":{fr_object}}}"#)
    );

    // bob accepts
    assert_eq!(
        b.ask(&format!(
            r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{fr}}}}}"#
        ))
        .await,
        format!(r#"{{"type":"FRIEND_REQUEST_ACCEPTED","payload":{{"id":{fr}}}}}"#)
    );
    assert_eq!(
        b.recv().await,
        format!(
            r#"{{"type":"CONTACT_ADDED","payload":{{"contactId":{alice},"userId":{alice},"username":"alice","avatar":"default.png","online":true}}}}"#
        )
    );
    assert_eq!(
        a.recv().await,
        format!(r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{fr}}}}}"#)
    );
    assert_eq!(
        a.recv().await,
        format!(
            r#"{{"type":"CONTACT_ADDED","payload":{{"contactId":{bob},"userId":{bob},"username":"bob","avatar":"default.png","online":true}}}}"#
        )
    );

    // alice sends a message; bob receives the push
    let reply = a
        .ask(&format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"ae8ca08a-a6de-493a-b18c-20781f5930fd","senderId":{alice},"receiverId":{bob},"content":"hi","type":"text"}}}}"#
        ))
        .await;
    let ack = payload(&reply, "MESSAGE_RECEIVED_SELF");
    let id = ack["id"].as_i64().expect("message id");
    assert!(id > 0, "the real message id, not the original's 0");
    let ts = ack["timestamp"].as_str().expect("timestamp").to_owned();
    assert_ctime(&ts);
    assert_eq!(
        reply,
        format!(
            r#"{{"type":"MESSAGE_RECEIVED_SELF","payload":{{"tempId":"ae8ca08a-a6de-493a-b18c-20781f5930fd","id":{id},"timestamp":{}}}}}"#,
            js(&ts)
        )
    );
    assert_eq!(
        b.recv().await,
        format!(
            r#"{{"type":"MESSAGE_RECEIVED_OTHER","payload":{{"id":{id},"senderId":{alice},"receiverId":{bob},"content":"hi","timestamp":{},"status":"sent","type":"text"}}}}"#,
            js(&ts)
        )
    );
    // MARK_READ has no reply: the next frame bob sees answers his next request.
    b.send(&format!(
        r#"{{"type":"MARK_READ","payload":{{"userId":{bob},"targetId":{alice}}}}}"#
    ))
    .await;
    let loaded_by_bob = b
        .ask(&format!(
            r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{bob},"targetId":{alice}}}}}"#
        ))
        .await;
    let history = |target: i64| {
        format!(
            r#"{{"type":"MESSAGES_LOADED","payload":{{"targetId":{target},"messages":[{{"id":{id},"senderId":{alice},"receiverId":{bob},"content":"hi","timestamp":{},"status":"read","type":"text"}}]}}}}"#,
            js(&ts)
        )
    };
    assert_eq!(loaded_by_bob, history(alice));

    // history reload: alice sees "read" once bob's read receipt reached her connection
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let loaded = a
            .ask(&format!(
                r#"{{"type":"LOAD_MESSAGES","payload":{{"userId":{alice},"targetId":{bob}}}}}"#
            ))
            .await;
        if loaded == history(bob) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && loaded.contains(r#""status":"sent""#),
            "{loaded}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // alice logs out: no reply, the socket stays open, and her token is spent
    a.send(&format!(
        r#"{{"type":"LOGOUT","payload":{{"userId":{alice}}}}}"#
    ))
    .await;
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{alice}}}}}"#
        ))
        .await,
        r#"{"type":"CONTACTS_LOADED_FAILED","payload":{"error":"请先登录"}}"#
    );
    assert_eq!(
        a.ask(&format!(
            r#"{{"type":"LOGIN_BY_TOKEN","payload":{{"token":{},"username":"alice"}}}}"#,
            js(&alice_token)
        ))
        .await,
        r#"{"type":"LOGIN_FAILURE","payload":{"error":"令牌已失效，请重新登录"}}"#
    );

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(websocket, super::websocket_session);

/// HarmonyOS: requests over HTTP, pushes on a WebSocket bound with HDL_INFO.
async fn http_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start_http(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;

    let (status, content_type, body) = post(
        addr,
        "/login",
        r#"{"type":"LOGIN","payload":{"username":"bob","password":"secret2"}}"#,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let token = payload(&body, "LOGIN_SUCCESS")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_token(&token);
    assert_eq!(
        body,
        format!(
            r#"{{"type":"LOGIN_SUCCESS","payload":{{"userId":{bob},"username":"bob","email":"bob@example.com","avatar":"default.png","token":{}}}}}"#,
            js(&token)
        )
    );

    let mut hos = Ws::connect(addr).await;
    assert_eq!(
        hos.ask(&format!(
            r#"{{"type":"HDL_INFO","payload":{{"userId":{bob}}}}}"#
        ))
        .await,
        format!(r#"{{"type":"HDL_GOT","payload":{{"userId":{bob}}}}}"#)
    );

    // alice (Angular, WebSocket) asks bob; the push reaches bob's bound WebSocket
    let mut a = Ws::connect(addr).await;
    payload(
        &a.ask(r#"{"type":"LOGIN","payload":{"username":"alice","password":"secret1"}}"#)
            .await,
        "LOGIN_SUCCESS",
    );
    let reply = a
        .ask(&format!(
            r#"{{"type":"ADD_FRIEND_REQUEST","payload":{{"id":-1,"requesterId":{alice},"requesterUsername":"alice","requesterAvatar":"default.png","targetId":{bob},"targetUsername":"bob","targetAvatar":"default.png","status":"pending"}}}}"#
        ))
        .await;
    let fr = payload(&reply, "FRIEND_REQUEST_ADDED")["id"]
        .as_i64()
        .expect("id");
    assert_eq!(payload(&hos.recv().await, "ADD_FRIEND_REQUEST")["id"], fr);

    let (status, _, body) = post(
        addr,
        "/friend/request/load",
        &format!(r#"{{"type":"LOAD_FRIEND_REQUEST","payload":{{"userId":{bob}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"type":"FRIEND_REQUEST_LOADED","payload":{{"requests":[{{"id":{fr},"requesterId":{alice},"targetId":{bob},"requesterUsername":"alice","targetUsername":"bob","requesterAvatar":"default.png","targetAvatar":"default.png","status":"pending"}}]}}}}"#
        )
    );
    let (status, _, body) = post(
        addr,
        "/friend/request/accept",
        &format!(r#"{{"type":"ACCEPT_FRIEND_REQUEST","payload":{{"id":{fr}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(r#"{{"type":"FRIEND_REQUEST_ACCEPTED","payload":{{"id":{fr}}}}}"#)
    );
    assert_eq!(payload(&a.recv().await, "ACCEPT_FRIEND_REQUEST")["id"], fr);
    assert_eq!(payload(&a.recv().await, "CONTACT_ADDED")["userId"], bob);

    // an HTTP send pushes to the receiver's WebSocket
    let (status, _, body) = post(
        addr,
        "/send",
        &format!(
            r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t1","senderId":{bob},"receiverId":{alice},"content":"from the phone","type":"text"}}}}"#
        ),
    )
    .await;
    assert_eq!(status, 200);
    let ack = payload(&body, "MESSAGE_RECEIVED_SELF");
    let pushed = payload(&a.recv().await, "MESSAGE_RECEIVED_OTHER");
    assert_eq!(pushed["id"], ack["id"]);
    assert_eq!(pushed["content"], "from the phone");

    let (status, _, body) = post(
        addr,
        "/load/contacts",
        &format!(r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{bob}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"type":"CONTACTS_LOADED","payload":{{"contacts":[{{"contactId":{alice},"username":"alice","avatar":"default.png","online":true}}]}}}}"#
        )
    );
    // MARK_READ and LOGOUT: 200 with an empty body; an unknown type: 400 with plain text
    let (status, _, body) = post(
        addr,
        "/",
        &format!(r#"{{"type":"MARK_READ","payload":{{"userId":{bob},"targetId":{alice}}}}}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _, body) = post(addr, "/", r#"{"type":"NOPE","payload":{}}"#).await;
    assert_eq!((status, body.as_str()), (400, "Illegal message received."));
    // another user's id is refused
    let (status, _, body) = post(
        addr,
        "/delete/contacts",
        &format!(r#"{{"type":"DELETE_CONTACT","payload":{{"userId":{alice},"targetId":{bob}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    payload(&body, "CONTACT_DELETED_FAILED");
    // bob deletes alice; she is told
    let (status, _, body) = post(
        addr,
        "/delete/contacts",
        &format!(r#"{{"type":"DELETE_CONTACT","payload":{{"userId":{bob},"targetId":{alice}}}}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!(r#"{{"type":"CONTACT_DELETED","payload":{{"targetId":{alice}}}}}"#)
    );
    assert_eq!(
        a.recv().await,
        format!(r#"{{"type":"DELETED_BY_CONTACT","payload":{{"contactId":{bob}}}}}"#)
    );
    let (status, _, body) = post(
        addr,
        "/",
        &format!(r#"{{"type":"LOGOUT","payload":{{"userId":{bob}}}}}"#),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (_, _, body) = post(
        addr,
        "/load/contacts",
        &format!(r#"{{"type":"LOAD_CONTACTS","payload":{{"userId":{bob}}}}}"#),
    )
    .await;
    payload(&body, "CONTACTS_LOADED_FAILED");

    bridge.stop().await;
    server.stop().await;
}

rosetta_testkit::both_backends!(http, super::http_session);

/// The tempId is only echoed: a client that repeats one (a counter restarting with the app)
/// still has every message stored and pushed, as the original server did.
async fn repeated_temp_ids(backend: Backend) {
    let server = TestServer::start(backend).await;
    let bridge = Bridge::start(server.backend()).await;
    let addr = bridge.addr;
    let (alice, _) = register(addr, "alice", "secret1").await;
    let (bob, _) = register(addr, "bob", "secret2").await;
    let (mut a, _) = common::login(addr, "alice", "secret1").await;
    let (mut b, _) = common::login(addr, "bob", "secret2").await;
    common::befriend(&mut a, alice, &mut b, bob).await;
    let mut ids = Vec::new();
    for text in ["first", "second"] {
        let ack = a
            .ask(&format!(
                r#"{{"type":"SEND_MESSAGE","payload":{{"tempId":"t1","senderId":{alice},"receiverId":{bob},"content":"{text}","type":"text"}}}}"#
            ))
            .await;
        let ack = payload(&ack, "MESSAGE_RECEIVED_SELF");
        assert_eq!(ack["tempId"], "t1");
        let pushed = payload(&b.recv().await, "MESSAGE_RECEIVED_OTHER");
        assert_eq!(
            (&pushed["content"], &pushed["id"]),
            (&text.into(), &ack["id"])
        );
        ids.push(ack["id"].as_i64().expect("id"));
    }
    assert_ne!(ids[0], ids[1], "two messages, not one");
    bridge.stop().await;
}
rosetta_testkit::both_backends!(temp_ids, super::repeated_temp_ids);
