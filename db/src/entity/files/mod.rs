//! Files tables (issue: files service).
