//! Bad input on one connection never disturbs the others: after each kind of garbage, the
//! offending client gets the protocol's answer (or silence, as the real server gave) and
//! another logged-in client is still served.

mod common;

use std::time::Duration;

use common::{Bridge, Client, MD5_123456, MD5_654321};
use rosetta_testkit::Backend;

/// A logged-in client to prove the bridge still serves others.
async fn bystander_still_served(c: &mut Client, uid: &str, token: &str) {
    c.send(&format!("get_user_friend|{uid}|{token}")).await;
    c.expect("friendinfo|0").await;
}

async fn register_and_login(bridge: &Bridge, name: &str, md5: &str) -> (Client, String, String) {
    let mut c = bridge.client().await;
    c.send(&format!("register|{name}|{md5}|{name}|1|sig|1|ans"))
        .await;
    c.expect("register_succ|注册成功！").await;
    let (uid, token, _) = c.login(name, md5).await;
    (c, uid, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_affects_only_its_connection() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let (mut a, ua, ta) = register_and_login(&bridge, "alice", MD5_123456).await;
    let (mut b, ub, tb) = register_and_login(&bridge, "bob", MD5_654321).await;
    let quiet = Duration::from_millis(500);

    // No `|` at all, and an unknown command: no reply, like the real server.
    let mut g = bridge.client().await;
    g.send("hello").await;
    g.expect_silence(quiet).await;
    g.send("launch_missiles|1|2|3").await;
    g.expect_silence(quiet).await;
    bystander_still_served(&mut b, &ub, &tb).await;

    // Invalid UTF-8 inside a known command: that command's error; unreadable name: silence.
    g.send_bytes(b"login|\xff\xfe|x").await;
    g.expect("login_error|用户名或密码错误！").await;
    g.send_bytes(b"\xc3\x28|\xff").await;
    g.expect_silence(quiet).await;
    // Missing fields: the per-command error.
    g.send("get_user_group|00001").await;
    g.expect("token_error|token错误，请重新登录！").await;
    bystander_still_served(&mut b, &ub, &tb).await;

    // A 1 MB line: read in bounded pieces, none of which is a valid command.
    let mut huge = format!("send_message|0|{ua}|{ub}|t|").into_bytes();
    huge.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    huge.extend(format!("|{ta}").into_bytes());
    g.send_bytes(&huge).await;
    bystander_still_served(&mut b, &ub, &tb).await;
    // Nothing of it reached bob as a message.
    b.expect_silence(quiet).await;

    // Wrong token, and a valid token of alice presented for bob: token errors, no effect.
    g.send(&format!("get_user_friend|{ua}|AAAAAAAAAAAAAAAA"))
        .await;
    g.recv_until("get_user_friend|您无权进行此操作！").await;
    g.send(&format!("add_friend|{ub}|{ua}|spoof|{ta}")).await;
    g.expect("token_error|token错误，请重新登录！").await;
    a.expect_silence(quiet).await;
    g.send(&format!("send_message|0|{ub}|{ua}|t|spoof|{ta}"))
        .await;
    g.expect("update_profile_error|token错误，请重新登录！")
        .await;
    a.expect_silence(quiet).await;
    // Alice's own pair works from any connection, as on the real server.
    g.send(&format!("get_user_info|{ua}|{ua}|{ta}")).await;
    g.expect("userinfo|alice|1|sig").await;

    // The garbage connection itself is still usable, and so are the others.
    g.send(&format!("login|bob|{MD5_654321}x")).await;
    g.expect("login_error|用户名或密码错误！").await;
    // An empty password is a wrong one, not a failure of the server.
    g.send("login|bob|").await;
    g.expect("login_error|用户名或密码错误！").await;
    bystander_still_served(&mut a, &ua, &ta).await;
    bystander_still_served(&mut b, &ub, &tb).await;
    bridge.stop().await;
}

/// A flag other than 0/1 and a message type beyond 0-3 get an `_error` reply instead of the
/// real server's silence; the seed document's in-band `send_file` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_cases_of_the_real_server_get_an_error() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let (mut a, ua, ta) = register_and_login(&bridge, "alice", MD5_123456).await;
    a.send(&format!("hand_friend_request|{ua}|1|7|{ta}")).await;
    a.expect("hand_friend_request_error|无效的操作！").await;
    a.send(&format!("send_message|4|{ua}|1|t|x|{ta}")).await;
    a.expect("send_message_error|消息类型错误！").await;
    a.send(&format!("send_message|1|{ua}|999999|t|x|{ta}"))
        .await;
    a.recv_until_prefix("send_message_error|").await;
    a.send(&format!("send_file|0|{ua}|1|t|1|data|{ta}")).await;
    a.expect("send_file_error|不支持此发送方式！").await;
    // Seed-document bare forms use the connection's login.
    a.send("get_unread_message|").await;
    a.expect("no_unread_message|0").await;
    a.send("get_unread_friend_request|").await;
    a.expect("unread_friend_request|0").await;
    let mut anonymous = bridge.client().await;
    anonymous.send("get_unread_group_request|").await;
    anonymous
        .expect("update_profile_error|token错误，请重新登录！")
        .await;
    bridge.stop().await;
}

/// A second login of the same user moves the pushes and invalidates the first token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_replaces_the_old_one() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let (mut first, ua, old) = register_and_login(&bridge, "alice", MD5_123456).await;
    let mut second = bridge.client().await;
    let (_, new, _) = second.login("alice", MD5_123456).await;
    assert_ne!(old, new);
    first.send(&format!("get_user_friend|{ua}|{old}")).await;
    first.expect("get_user_friend|您无权进行此操作！").await;
    second.send(&format!("get_user_friend|{ua}|{new}")).await;
    second.expect("friendinfo|0").await;
    bridge.stop().await;
}

/// `del_friend` always succeeded on the real server: naming a non-friend or oneself too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_friend_always_succeeds() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let (mut a, ua, ta) = register_and_login(&bridge, "alice", MD5_123456).await;
    let (_b, ub, _) = register_and_login(&bridge, "bob", MD5_654321).await;
    for friend in [&ub, &ua] {
        a.send(&format!("del_friend|{ua}|{friend}|{ta}")).await;
        a.expect("del_friend_succ|删除成功！").await;
    }
    bridge.stop().await;
}

/// Two commands written back to back may arrive in one read: cut after the first one's token
/// (pipe.md §1.2), both are answered, in order, each with its own write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_arriving_in_one_read_are_each_answered() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let (mut a, ua, ta) = register_and_login(&bridge, "alice", MD5_123456).await;
    a.send(&format!(
        "get_user_friend|{ua}|{ta}get_user_info|{ua}|{ua}|{ta}\r\nget_unread_message|{ua}|{ta}"
    ))
    .await;
    a.expect("friendinfo|0").await;
    a.expect("userinfo|alice|1|sig").await;
    a.expect("no_unread_message|0").await;
    bridge.stop().await;
}

/// A command split over two reads (a long command cut by the network) is put back together
/// when its rest follows promptly (pipe.md §5); one cut short for good still gets its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_split_over_two_reads_is_put_back_together() {
    let bridge = Bridge::start(Backend::Sqlite, None).await;
    let mut c = bridge.client().await;
    // Cut inside a UTF-8 character of the nickname.
    let register = format!("register|carol|{MD5_123456}|卡罗尔|1|签名|1|ans").into_bytes();
    let inside_char = register.iter().position(|&b| b >= 0x80).unwrap() + 1;
    c.send_bytes(&register[..inside_char]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send_bytes(&register[inside_char..]).await;
    c.expect("register_succ|注册成功！").await;
    let (uid, token, _) = c.login("carol", MD5_123456).await;

    // Cut inside the token, and cut before the token.
    let command = format!("get_user_info|{uid}|{uid}|{token}");
    for cut in [command.len() - 5, command.len() - token.len() - 1] {
        c.send(&command[..cut]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.send(&command[cut..]).await;
        c.expect("userinfo|卡罗尔|1|签名").await;
    }

    // A new command read after a cut one is not taken for its rest: both are answered.
    c.send(&format!("get_user_group|{uid}")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(&format!("get_user_info|{uid}|{uid}|{token}")).await;
    c.expect("token_error|token错误，请重新登录！").await;
    c.expect("userinfo|卡罗尔|1|签名").await;

    // Nothing follows: the cut command is answered as it is.
    c.send(&command[..command.len() - 5]).await;
    c.expect("update_profile_error|token错误，请重新登录！")
        .await;
    bridge.stop().await;
}
