//! Messages that arrived while the user was away: delivered as `S_SEND_MSG` (or `S_AUDIO_RSP`)
//! right after `S_LOGIN_RSP`, oldest first, then marked read so that the next login does not
//! deliver them again. Messages pushed live are marked read too, for the same reason, off the
//! push path: recorded into the bridge's batcher and written shortly after (and before the
//! login ends).

use std::collections::HashMap;

use rosetta_bridge_kit::unread::{mark_read, unread};
use rosetta_proto::messaging::v1::{ConversationKind, Message, message::To};

use super::{Close, Ctx, replies::refused};

/// Messages delivered at one login at most; older ones first, the rest at the next login.
const MAX_BACKLOG: usize = 1000;

/// What the backlog delivered: the newest seq per sender, so that a message also pushed live
/// (it arrived between the stream going live and the backlog being listed) is not shown twice.
#[derive(Default)]
pub(super) struct Delivered(HashMap<i64, u64>);

impl Delivered {
    /// Whether `message` was already delivered from the backlog.
    pub(super) fn contains(&self, message: &Message) -> bool {
        self.0
            .get(&message.sender_id)
            .is_some_and(|seq| message.seq <= *seq)
    }

    fn add(&mut self, message: &Message) {
        let seq = self.0.entry(message.sender_id).or_default();
        *seq = (*seq).max(message.seq);
    }
}

impl Ctx<'_> {
    /// Pushes the private messages the user has not read (dialect A has no groups), then
    /// marks them read.
    pub(super) async fn deliver_backlog(&mut self) -> Result<(), Close> {
        let messages = match unread(self.session(), &[ConversationKind::Private], MAX_BACKLOG).await
        {
            Ok(messages) => messages,
            Err(status) => {
                // They stay unread and come at the next login.
                refused(self.user_id(), "listing unread messages", &status);
                return Ok(());
            }
        };
        for message in &messages {
            self.me.delivered.add(message);
            self.show_message(message.clone()).await?;
        }
        mark_read(self.session(), &messages).await;
        Ok(())
    }

    /// A message pushed live: shown unless the backlog already did, then recorded as read.
    pub(super) async fn push_message(&mut self, message: Message) -> Result<(), Close> {
        let me = self.user_id();
        if self.me.delivered.contains(&message)
            || message.sender_id == me
            || message.to != Some(To::ToUserId(me))
        {
            return Ok(());
        }
        let read = message.clone();
        self.show_message(message).await?;
        // Waits only when the login's pending conversations are full (it then writes them).
        self.me.marks.record(&read).await;
        Ok(())
    }
}
