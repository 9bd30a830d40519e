//! How users appear on the IMPS wire. The client names everybody by a GB2312 user name; a
//! canonical user name GB2312 cannot hold (an emoji, a rare character from another protocol's
//! client) is shown as `#<numeric id>`, which the bridge accepts back wherever a name goes.

use rosetta_proto::account::v1::User;

use crate::codec::{decode_gb2312, encode_gb2312};

/// The name an IMPS client sees for `user`.
pub fn display_name(user: &User) -> String {
    let fits = !user.username.is_empty()
        && decode_gb2312(&encode_gb2312(&user.username)).is_ok_and(|back| back == user.username);
    if fits {
        user.username.clone()
    } else {
        format!("#{}", user.id)
    }
}

/// The user id a `#<id>` alias names, if `name` is one.
pub fn alias_id(name: &str) -> Option<i64> {
    let digits = name.strip_prefix('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str) -> User {
        User {
            id,
            username: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_gb2312_cannot_hold_become_aliases() {
        assert_eq!(display_name(&user(7, "alice")), "alice");
        assert_eq!(display_name(&user(7, "小明")), "小明");
        assert_eq!(display_name(&user(7, "smile😀")), "#7");
        assert_eq!(display_name(&user(7, "")), "#7");
        assert_eq!(alias_id("#7"), Some(7));
        assert_eq!(alias_id("#"), None);
        assert_eq!(alias_id("#-7"), None);
        assert_eq!(alias_id("#99999999999999999999"), None);
        assert_eq!(alias_id("bob"), None);
    }
}
