//! The social service (not yet implemented).
