//! Files tables (issue: files service).

pub mod file;
