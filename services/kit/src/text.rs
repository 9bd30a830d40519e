//! Checks of user-visible names shared by the services.

/// Unicode bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069) and the marks U+200E, U+200F and U+061C. In a name they reorder what other
/// users see ("invoice\u{202E}fdp.exe" shows as "invoiceexe.pdf") or let one name pose as
/// another; no name needs them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Whether `text` holds a bidirectional control.
pub fn has_bidi_control(text: &str) -> bool {
    text.chars().any(is_bidi_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_found() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert!(has_bidi_control(&format!("a{c}b")), "U+{:04X}", c as u32);
        }
        for ok in ["alice", "小明", "smile😀", "a\u{200D}b", "عربي", "עברית"] {
            assert!(!has_bidi_control(ok), "{ok}");
        }
    }
}
