//! Client-supplied names and folders are metadata only (object names are generated), but they
//! are still shown to other users and re-used as relative paths by clients that download a
//! folder, so anything that could escape or confuse a path is refused with BAD_NAME.

use rosetta_kit::{ApiError, ApiResult, Reason, text::has_bidi_control};

/// Longest name or folder part, in bytes (the common filesystem limit).
const MAX_PART_BYTES: usize = 255;
/// Deepest folder accepted.
const MAX_DEPTH: usize = 32;
/// Longest content type kept.
const MAX_CONTENT_TYPE_BYTES: usize = 255;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::invalid(Reason::BadName, message)
}

/// A file's base name: one safe path part.
pub fn file_name(name: &str) -> ApiResult<String> {
    if name.contains(['/', '\\']) {
        return Err(bad(
            "a file name cannot contain '/' or '\\'; use the folder",
        ));
    }
    part(name)?;
    Ok(name.to_owned())
}

/// A relative folder: parts split on '/' or '\', re-joined with '/'. "" is the top level.
pub fn folder(folder: &str) -> ApiResult<String> {
    if folder.is_empty() {
        return Ok(String::new());
    }
    let parts: Vec<&str> = folder.split(['/', '\\']).collect();
    if parts[0].is_empty() {
        return Err(bad("folder must be relative"));
    }
    if is_drive(parts[0]) {
        return Err(bad("folder cannot start with a drive letter"));
    }
    if parts.len() > MAX_DEPTH {
        return Err(bad(format!("folder is deeper than {MAX_DEPTH} levels")));
    }
    for p in &parts {
        part(p)?;
    }
    Ok(parts.join("/"))
}

/// A content type: printable text of bounded length (it is echoed back, never interpreted).
pub fn content_type(content_type: &str) -> ApiResult<String> {
    if content_type.len() > MAX_CONTENT_TYPE_BYTES || content_type.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            Reason::BadContentType,
            "content type must be printable and at most 255 bytes",
        ));
    }
    Ok(content_type.to_owned())
}

fn part(p: &str) -> ApiResult<()> {
    match p {
        "" => Err(bad("empty name or folder part")),
        "." | ".." => Err(bad("'.' and '..' are not allowed")),
        _ if p.len() > MAX_PART_BYTES => Err(bad("name part longer than 255 bytes")),
        // NUL, other C0/C1 controls and DEL.
        _ if p.chars().any(char::is_control) => Err(bad("control characters are not allowed")),
        // A drive letter (`C:x`) or an NTFS alternate data stream (`file.txt:hidden`) on the
        // Windows clients that save names as they are.
        _ if p.contains(':') => Err(bad("':' is not allowed (drive letters, data streams)")),
        _ if has_bidi_control(p) => Err(bad(
            "bidirectional control characters are not allowed (they disguise the extension)",
        )),
        _ if is_windows_device(p) => Err(bad(format!(
            "{p:?} is a reserved Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9)"
        ))),
        _ => Ok(()),
    }
}

/// Windows opens a device, not a file, for these names with any extension and any case
/// (`nul.txt`, `Com1.log`), and ignores spaces before the extension (`CON .txt`).
fn is_windows_device(p: &str) -> bool {
    let stem = p.split('.').next().unwrap_or(p).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    // COM0-9 and LPT0-9, and the superscript digits Windows also treats as ports.
    let port = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"));
    let mut rest = port.map(str::chars).into_iter().flatten();
    matches!(
        (rest.next(), rest.next()),
        (Some('0'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'), None)
    )
}

/// `C:`, `c:foo`: a Windows drive-relative or absolute path.
fn is_drive(first: &str) -> bool {
    let mut chars = first.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_normalise_separators() {
        assert_eq!(folder("").unwrap(), "");
        assert_eq!(folder("a").unwrap(), "a");
        assert_eq!(folder("a\\b/c").unwrap(), "a/b/c");
        assert_eq!(folder("作业/第一周").unwrap(), "作业/第一周");
        assert_eq!(folder("a..b/.hidden").unwrap(), "a..b/.hidden");
    }

    #[test]
    fn hostile_folders_are_refused() {
        for hostile in [
            "../x",
            "a/../b",
            "a/..",
            "./a",
            "a/.",
            "/etc",
            "\\\\server\\share",
            "\\x",
            "C:",
            "c:\\windows",
            "C:x",
            "a//b",
            "a/",
            "a\\",
            "a\0b",
            "a/\nb",
            "a\u{7f}",
        ] {
            let err = folder(hostile).unwrap_err();
            assert_eq!(err.reason, Reason::BadName, "{hostile:?}");
        }
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert_eq!(folder(&deep).unwrap_err().reason, Reason::BadName);
    }

    #[test]
    fn names_are_single_safe_parts() {
        assert_eq!(file_name("report v2.txt").unwrap(), "report v2.txt");
        assert_eq!(file_name("..hidden").unwrap(), "..hidden");
        for hostile in ["", ".", "..", "a/b", "a\\b", "../x", "x\0", "\t"] {
            assert_eq!(
                file_name(hostile).unwrap_err().reason,
                Reason::BadName,
                "{hostile:?}"
            );
        }
        assert_eq!(
            file_name(&"n".repeat(256)).unwrap_err().reason,
            Reason::BadName
        );
    }

    #[test]
    fn windows_devices_streams_and_bidi_are_refused() {
        for hostile in [
            "CON",
            "con",
            "Nul.txt",
            "aux.",
            "PRN.tar.gz",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt9",
            "CON .txt",
            "COM\u{b9}",
            "CONIN$",
            "a:b",
            "f.txt:zone",
            "x\u{202E}gpj.exe",
            "x\u{2066}",
            "x\u{200F}",
            "x\u{061C}",
        ] {
            assert_eq!(
                file_name(hostile).unwrap_err().reason,
                Reason::BadName,
                "{hostile:?}"
            );
            assert_eq!(
                folder(&format!("ok/{hostile}")).unwrap_err().reason,
                Reason::BadName,
                "folder {hostile:?}"
            );
        }
        for fine in [
            "console.txt",
            "CON1",
            "COM10",
            "LPT",
            "nullable",
            "aux-notes.md",
            ".con",
        ] {
            assert_eq!(file_name(fine).unwrap(), fine);
        }
    }
}
