//! A stream's large groups: the messages that are not in the user's log, followed by
//! conversation seq.
//!
//! The stream links each of its user's large groups before it reads anything (so a message
//! committed meanwhile is read or woken, or both), and keeps a cursor per group: the newest
//! conversation seq it sent. A group message is sent only when its seq is the cursor's next;
//! an older one is a duplicate and dropped; a jump (a lost wake-up, a message overtaken) and
//! every re-read read the conversation from the cursor, after confirming that the user is
//! still a member. A group crosses the threshold (or the user joins one) as the user's log
//! says so — every membership change reaches every member's log — and the stream follows it
//! from then on; a leave, kick or dissolution in the log unfollows at once (the dispatcher
//! has already stopped delivering: it confirms membership per message).
//!
//! A group the client holds a cursor for and that has newer messages is followed too, large
//! or not: it may have been large while the client was away (those messages are in no log).
//!
//! Where a group's cursor starts: the client's cursor for its conversation; with no resume
//! point at all, the conversation's newest seq; otherwise the user's read (or cleared) mark,
//! skipping messages sent before they joined (less [`JOIN_SKEW_MS`] of clock skew between
//! processes). A message of a followed group that also sits in the log (written while the
//! group was small) is sent once: by seq, whichever path brings it first.

use std::collections::HashMap;

use rosetta_kit::ApiResult;
use rosetta_proto::messaging::v1::{
    ConversationCursor, Event, event::Kind, message::To, subscribe_response::Item,
};

use super::{Outbox, REPLAY_BATCH, Resume, send};
use crate::{
    Messaging,
    bus::{GroupLink, Subscription},
    fanout::{self, LargeGroup},
};

/// Messages sent this long before the user joined still count as sent after: the join time
/// and the messages' times come from different processes' clocks.
pub const JOIN_SKEW_MS: i64 = 1_000;

/// Small groups whose newest message seq the stream remembers (to start following one that
/// turns large where the log left off); cleared when full.
const SEEN_LIMIT: usize = 4096;

/// The large groups a stream follows.
#[derive(Default)]
pub struct Tracks {
    groups: HashMap<i64, Track>,
    /// Small groups' newest conversation seq sent through the log: (conversation, seq).
    seen: HashMap<i64, (i64, u64)>,
}

struct Track {
    _link: GroupLink,
    conversation: Option<i64>,
    cursor: u64,
    /// Messages sent before this are skipped (the join, less the skew); `i64::MIN` once the
    /// cursor came from the client or from what this stream sent.
    since_ms: i64,
}

impl Tracks {
    /// One cursor per followed group that has a conversation.
    pub fn cursors(&self) -> Vec<ConversationCursor> {
        let mut cursors: Vec<ConversationCursor> = self
            .groups
            .values()
            .filter_map(|track| {
                Some(ConversationCursor {
                    conversation_id: track.conversation?,
                    seq: track.cursor,
                })
            })
            .collect();
        cursors.sort_by_key(|c| c.conversation_id);
        cursors
    }

    fn follow(&mut self, link: GroupLink, group: &LargeGroup, resume: &Resume) {
        let from_client = group
            .conversation
            .and_then(|c| resume.cursors.get(&c).copied());
        let from_log = self.seen.get(&group.group).map(|&(_, seq)| seq);
        let (cursor, since_ms) = match (from_client.or(from_log), resume.after_seq) {
            (Some(seq), _) => (seq, i64::MIN),
            (None, None) => (group.last_seq, i64::MIN),
            (None, Some(_)) => (
                group.read_seq,
                group.joined_at_ms.saturating_sub(JOIN_SKEW_MS),
            ),
        };
        self.groups.insert(
            group.group,
            Track {
                _link: link,
                conversation: group.conversation,
                cursor,
                since_ms,
            },
        );
    }

    fn saw_small(&mut self, group: i64, conversation: i64, seq: u64) {
        if self.seen.len() >= SEEN_LIMIT && !self.seen.contains_key(&group) {
            self.seen.clear();
        }
        self.seen.insert(group, (conversation, seq));
    }
}

/// A message of a large group, woken for the group (seq 0: it is in no user's log).
pub fn is_group_message(event: &Event) -> bool {
    event.seq == 0
        && matches!(&event.kind, Some(Kind::Message(m)) if matches!(m.to, Some(To::ToGroupId(_))))
}

fn group_of(event: &Event) -> Option<(i64, i64, u64)> {
    match &event.kind {
        Some(Kind::Message(m)) => match m.to {
            Some(To::ToGroupId(group)) => Some((group, m.conversation_id, m.seq)),
            _ => None,
        },
        _ => None,
    }
}

fn message_event(model: &rosetta_db::entity::messaging::message::Model) -> Event {
    Event {
        seq: 0,
        at_ms: model.sent_at_ms,
        kind: Some(Kind::Message(crate::convert::message(model))),
    }
}

impl Messaging {
    /// Links every large group of `me` to the stream `live`, with its starting cursor, and
    /// every group the client holds a cursor for that has newer messages (it may have been
    /// large meanwhile).
    pub(super) async fn follow_large_groups(
        &self,
        me: i64,
        resume: &Resume,
        live: &Subscription,
    ) -> ApiResult<Tracks> {
        let max = self.config.group_fanout_max_members;
        let mut tracks = Tracks::default();
        let mut found = fanout::large_groups_of(&self.db, me, max).await?;
        let known = found.iter().map(|&(group, _)| group).collect();
        found.extend(fanout::lagging_groups(&self.db, me, &resume.cursors, &known).await?);
        let mut links = Vec::with_capacity(found.len());
        for &(group, _) in &found {
            links.push(self.bus.link_group(live, group).await?);
        }
        // Conversations and read marks only now, after linking: nothing is missed between.
        let groups = fanout::describe(&self.db, me, &found).await?;
        for (link, group) in links.into_iter().zip(&groups) {
            tracks.follow(link, group, resume);
        }
        Ok(tracks)
    }

    /// Reads every followed group from its cursor.
    pub(super) async fn catch_up_all(
        &self,
        me: i64,
        tracks: &mut Tracks,
        out: &Outbox,
    ) -> ApiResult<()> {
        let groups: Vec<i64> = tracks.groups.keys().copied().collect();
        for group in groups {
            self.catch_up(me, group, tracks, out).await?;
        }
        Ok(())
    }

    /// Sends `group`'s messages after its cursor, if `me` is still a member (otherwise stops
    /// following it).
    async fn catch_up(
        &self,
        me: i64,
        group: i64,
        tracks: &mut Tracks,
        out: &Outbox,
    ) -> ApiResult<()> {
        if !fanout::members_among(&self.db, group, &[me])
            .await?
            .contains(&me)
        {
            tracks.groups.remove(&group);
            return Ok(());
        }
        let Some(track) = tracks.groups.get_mut(&group) else {
            return Ok(());
        };
        if track.conversation.is_none() {
            track.conversation = fanout::conversation_of(&self.db, group).await?;
        }
        let Some(conversation) = track.conversation else {
            return Ok(());
        };
        loop {
            let rows = fanout::messages_after(
                &self.db,
                conversation,
                track.cursor,
                track.since_ms,
                REPLAY_BATCH,
            )
            .await?;
            for row in &rows {
                if !send(out, Item::Event(message_event(row))).await {
                    return Ok(());
                }
                track.cursor = crate::log::to_u64(row.seq);
            }
            if (rows.len() as u64) < REPLAY_BATCH {
                return Ok(());
            }
        }
    }

    /// A large group's message woken for the group: sent if it is its group's next.
    pub(super) async fn on_group_message(
        &self,
        me: i64,
        event: &Event,
        tracks: &mut Tracks,
        out: &Outbox,
    ) -> ApiResult<()> {
        let Some((group, conversation, seq)) = group_of(event) else {
            return Ok(());
        };
        let Some(track) = tracks.groups.get_mut(&group) else {
            return Ok(()); // not (or no longer) followed here
        };
        track.conversation.get_or_insert(conversation);
        if seq <= track.cursor {
            return Ok(());
        }
        if seq > track.cursor + 1 {
            return self.catch_up(me, group, tracks, out).await;
        }
        if send(out, Item::Event(event.clone())).await {
            track.cursor = seq;
            track.since_ms = i64::MIN;
        }
        Ok(())
    }

    /// Sends an event of the user's log, unless it is a followed group's message already
    /// sent; a membership change then starts or stops following its group. False once the
    /// client is gone.
    pub(super) async fn forward(
        &self,
        me: i64,
        event: Event,
        tracks: &mut Tracks,
        live: &Subscription,
        out: &Outbox,
    ) -> ApiResult<bool> {
        if let Some((group, conversation, seq)) = group_of(&event) {
            if let Some(cursor) = tracks.groups.get(&group).map(|t| t.cursor) {
                if seq > cursor + 1 {
                    self.catch_up(me, group, tracks, out).await?;
                }
                let Some(track) = tracks.groups.get_mut(&group) else {
                    return Ok(true);
                };
                if seq <= track.cursor {
                    // Already sent by seq; the log position still moves on.
                    return Ok(true);
                }
                let sent = send(out, Item::Event(event)).await;
                if sent {
                    track.cursor = seq;
                    track.since_ms = i64::MIN;
                }
                return Ok(sent);
            }
            tracks.saw_small(group, conversation, seq);
            return Ok(send(out, Item::Event(event)).await);
        }
        let change = membership_change(&event, me);
        if !send(out, Item::Event(event)).await {
            return Ok(false);
        }
        match change {
            Some(Change::Gone(group)) => {
                tracks.groups.remove(&group);
            }
            Some(Change::Grew(group)) if !tracks.groups.contains_key(&group) => {
                self.follow_if_large(me, group, tracks, live, out).await?;
            }
            _ => {}
        }
        Ok(true)
    }

    /// Starts following `group` if `me` is a member and it is large now.
    async fn follow_if_large(
        &self,
        me: i64,
        group: i64,
        tracks: &mut Tracks,
        live: &Subscription,
        out: &Outbox,
    ) -> ApiResult<()> {
        let max = self.config.group_fanout_max_members;
        let Some(found) = fanout::large_group(&self.db, me, group, max).await? else {
            return Ok(());
        };
        let link = self.bus.link_group(live, group).await?;
        let resume = Resume {
            after_seq: Some(0),
            cursors: HashMap::new(),
        };
        tracks.follow(link, &found, &resume);
        self.catch_up(me, group, tracks, out).await
    }
}

/// What a log event says about the user's large groups.
enum Change {
    /// The user left, was kicked, or the group was dissolved.
    Gone(i64),
    /// Someone joined or was added: the group may have become large, or the user joined.
    Grew(i64),
}

fn membership_change(event: &Event, me: i64) -> Option<Change> {
    match event.kind.as_ref()? {
        Kind::MemberLeft(c) if c.user_id == me => Some(Change::Gone(c.group_id)),
        Kind::GroupDissolved(d) => Some(Change::Gone(d.group_id)),
        Kind::MemberJoined(c) => Some(Change::Grew(c.group_id)),
        Kind::MembersAdded(a) => Some(Change::Grew(a.group_id)),
        _ => None,
    }
}
