//! Where a user's event stream resumes after a break: the newest seq of the user's log seen,
//! and, for large groups (whose messages are not in that log), the newest message seq seen in
//! each group conversation. One value, so that any stream that carries a user's events can
//! keep and hand it on.

use std::collections::HashMap;

use rosetta_proto::messaging::v1::{
    CaughtUp, ConversationCursor, Event, SubscribeRequest, event::Kind, message::To,
};

/// Conversation cursors kept per user: the server accepts at most this many, and a user
/// belongs to far fewer large groups. Past it the oldest-numbered are dropped (their groups
/// then resume from the read mark).
const MAX_CURSORS: usize = 4096;

/// A user stream's resume point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// Newest seq of the user's log seen; `None` until the first catch-up marker.
    after_seq: Option<u64>,
    /// Group conversation id → newest message seq seen.
    cursors: HashMap<i64, u64>,
}

impl Resume {
    /// The request that resumes here.
    pub fn request(&self) -> SubscribeRequest {
        let mut conversation_cursors: Vec<ConversationCursor> = self
            .cursors
            .iter()
            .map(|(&conversation_id, &seq)| ConversationCursor {
                conversation_id,
                seq,
            })
            .collect();
        conversation_cursors.sort_by_key(|c| c.conversation_id);
        SubscribeRequest {
            after_seq: self.after_seq,
            conversation_cursors,
        }
    }

    /// Whether `event` is at or before this point: a log event by its seq, a large group's
    /// message (outside the log) by its conversation's cursor. Live-only events never are.
    pub fn repeats(&self, event: &Event) -> bool {
        if event.seq > 0 {
            return self.after_seq.is_some_and(|after| event.seq <= after);
        }
        match &event.kind {
            Some(Kind::Message(message)) if matches!(message.to, Some(To::ToGroupId(_))) => self
                .cursors
                .get(&message.conversation_id)
                .is_some_and(|&cursor| message.seq <= cursor),
            _ => false,
        }
    }

    /// Newest log seq seen, if any.
    pub fn after_seq(&self) -> Option<u64> {
        self.after_seq
    }

    /// The catch-up marker: the log head and the large groups' cursors.
    pub fn caught_up(&mut self, caught_up: &CaughtUp) {
        self.log_seen(caught_up.head_seq);
        for cursor in &caught_up.conversation_cursors {
            self.cursor_seen(cursor.conversation_id, cursor.seq);
        }
    }

    /// An event delivered: moves the log position (seq 0 does not) and, for a group message,
    /// its conversation's cursor.
    pub fn seen(&mut self, event: &Event) {
        self.log_seen(event.seq);
        if let Some(Kind::Message(message)) = &event.kind
            && matches!(message.to, Some(To::ToGroupId(_)))
        {
            self.cursor_seen(message.conversation_id, message.seq);
        }
    }

    fn log_seen(&mut self, seq: u64) {
        if seq > 0 {
            self.after_seq = Some(self.after_seq.map_or(seq, |after| after.max(seq)));
        }
    }

    fn cursor_seen(&mut self, conversation: i64, seq: u64) {
        if self.cursors.len() >= MAX_CURSORS
            && !self.cursors.contains_key(&conversation)
            && let Some(&oldest) = self.cursors.keys().min()
        {
            self.cursors.remove(&oldest);
        }
        let cursor = self.cursors.entry(conversation).or_default();
        *cursor = (*cursor).max(seq);
    }
}

#[cfg(test)]
mod tests {
    use rosetta_proto::messaging::v1::Message;

    use super::*;

    fn group_message(seq: u64, conversation_id: i64, at: u64) -> Event {
        Event {
            seq,
            kind: Some(Kind::Message(Message {
                conversation_id,
                seq: at,
                to: Some(To::ToGroupId(9)),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn resumes_after_the_newest_log_seq_and_group_seqs_seen() {
        let mut resume = Resume::default();
        assert_eq!(resume.request().after_seq, None, "nothing seen: live only");
        resume.caught_up(&CaughtUp {
            head_seq: 4,
            conversation_cursors: vec![ConversationCursor {
                conversation_id: 7,
                seq: 10,
            }],
        });
        resume.seen(&group_message(0, 7, 11)); // a large group's message: not in the log
        resume.seen(&group_message(5, 8, 3)); // a small group's: in the log
        resume.seen(&group_message(0, 7, 9)); // an older one never moves a cursor back
        let request = resume.request();
        assert_eq!(request.after_seq, Some(5));
        let cursors: Vec<(i64, u64)> = request
            .conversation_cursors
            .iter()
            .map(|c| (c.conversation_id, c.seq))
            .collect();
        assert_eq!(cursors, vec![(7, 11), (8, 3)]);
    }
}
