//! The social graph. States and roles are stored as the numbers of their proto enums
//! (`rosetta.social.v1.RequestState`, `GroupRole`).

pub mod block;
pub mod friend_request;
pub mod friendship;
pub mod group;
pub mod group_invitation;
pub mod group_member;
pub mod join_request;
