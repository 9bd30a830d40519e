//! Messaging tables (issue: messaging service).
