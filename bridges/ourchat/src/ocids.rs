//! Ocids and user ids, both ways, remembered per connection: an ocid is given at registration
//! and never changes or passes to another account (a deleted account keeps its row and ocid),
//! so a pair once read is true for good. A send to a friend's ocid then needs no `LookupUser`,
//! and a push no profile read for its sender's ocid.

use std::collections::HashMap;

/// Pairs one connection remembers at most (all are forgotten when full: cheap to read again).
const CAPACITY: usize = 256;

#[derive(Default)]
pub(crate) struct Ocids {
    by_id: HashMap<i64, String>,
    by_ocid: HashMap<String, i64>,
}

impl Ocids {
    pub(crate) fn ocid(&self, user_id: i64) -> Option<&str> {
        self.by_id.get(&user_id).map(String::as_str)
    }

    pub(crate) fn id(&self, ocid: &str) -> Option<i64> {
        self.by_ocid.get(ocid).copied()
    }

    pub(crate) fn learn(&mut self, user_id: i64, ocid: &str) {
        if self.by_id.len() >= CAPACITY {
            *self = Self::default();
        }
        self.by_id.insert(user_id, ocid.to_owned());
        self.by_ocid.insert(ocid.to_owned(), user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_and_bounded() {
        let mut ocids = Ocids::default();
        ocids.learn(7, "abcdefghij");
        assert_eq!(ocids.ocid(7), Some("abcdefghij"));
        assert_eq!(ocids.id("abcdefghij"), Some(7));
        for id in 0..CAPACITY as i64 * 3 {
            ocids.learn(id + 100, &format!("o{id}"));
            assert!(ocids.by_id.len() <= CAPACITY && ocids.by_ocid.len() <= CAPACITY);
        }
    }
}
