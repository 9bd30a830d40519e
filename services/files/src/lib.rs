//! The files service (not yet implemented).
