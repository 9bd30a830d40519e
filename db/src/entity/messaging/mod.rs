//! Messaging tables. Kinds and statuses are stored as the numbers of their proto enums
//! (`rosetta.messaging.v1.MessageKind`, `ConversationKind`, `rosetta.social.v1.PresenceStatus`).

pub mod conversation;
pub mod event_head;
pub mod message;
pub mod presence;
pub mod read_state;
pub mod user_event;
