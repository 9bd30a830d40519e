//! The messaging service (not yet implemented).
