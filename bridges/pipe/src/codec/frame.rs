//! One read into the commands it holds, in one pass and parsing each command once.
//!
//! The protocol has no framing: one read is one command, as on the real server, with the one
//! exception pipe.md §1.2 allows. Where a `|`-delimited 16-character token is directly followed
//! (perhaps after CR, LF or NUL) by a known command name, and what comes before parses as a
//! whole command, a client wrote twice before the first was read, and the read is cut there.
//!
//! The reader walks the read once, field by field, keeping the fields of the command it is in
//! (checked as UTF-8 once each). At a possible cut it tries those fields plus the token; a
//! failed try costs O(1) (see [`parse_fields`]) and a successful one ends the command, so the
//! whole read costs O(n). An earlier version re-parsed from the command's start at every
//! possible cut, which a crafted read turned quadratic.

use super::{
    command::{Command, ParseError, Request},
    parse::{Meter, parse_fields, parse_metered},
};

/// Length of the tokens the server issues (16 alphanumerics).
pub(super) const TOKEN_LEN: usize = 16;
/// The longest command name (`get_unread_friend_request`).
const MAX_NAME: usize = 25;

/// One command of a read: its bytes and what they parse to.
#[derive(Debug)]
pub struct Piece<'a> {
    pub bytes: &'a [u8],
    pub parsed: Result<Request, ParseError>,
}

impl Piece<'_> {
    /// Whether this looks like the first part of a command whose rest is still in flight: a
    /// known command with too few fields, text cut inside a UTF-8 character, or a final token
    /// shorter than the server issues. The real server mangled commands split over two reads;
    /// pipe.md §5 asks the bridge to tolerate them.
    pub fn incomplete(&self) -> bool {
        match &self.parsed {
            Err(ParseError::Fields(_) | ParseError::Encoding(Some(_))) => true,
            Ok(request) => request
                .auth()
                .is_some_and(|auth| auth.token.len() < TOKEN_LEN),
            Err(_) => false,
        }
    }
}

/// The commands of a read, and how many bytes the reader examined to find them (every visit
/// counted, re-reads included): the measure of its linearity.
#[derive(Debug)]
pub struct Split<'a> {
    pub pieces: Vec<Piece<'a>>,
    pub examined: usize,
}

/// The commands in one read (at least one piece, possibly empty).
pub fn commands(bytes: &[u8]) -> Vec<Piece<'_>> {
    split(bytes).pieces
}

/// Whether `bytes` is the first part of a command whose rest is still in flight.
pub fn incomplete(bytes: &[u8]) -> bool {
    Piece {
        bytes,
        parsed: super::parse(bytes),
    }
    .incomplete()
}

/// [`commands`], with the count of bytes examined.
pub fn split(bytes: &[u8]) -> Split<'_> {
    let meter = Meter::default();
    let mut pieces = Vec::new();
    let mut start = 0;
    'pieces: loop {
        let mut current = Current::default();
        let mut field_start = start;
        let mut at = start;
        while let Some(bar) = find_bar(bytes, at, &meter) {
            if !current.field(&bytes[field_start..bar], &meter) {
                // Unknown name or invalid UTF-8: the rest can never parse whole, so no cut.
                break;
            }
            at = bar + 1;
            field_start = at;
            let Some(command) = current.command else {
                continue;
            };
            let Some((token, next)) = cut_after(bytes, at, &meter) else {
                continue;
            };
            current.fields.push(token);
            let parsed = parse_fields(command, &current.fields, &meter);
            current.fields.pop();
            if let Some(request) = parsed {
                pieces.push(Piece {
                    bytes: &bytes[start..at + TOKEN_LEN],
                    parsed: Ok(request),
                });
                start = next;
                continue 'pieces;
            }
        }
        let rest = &bytes[start..];
        pieces.push(Piece {
            bytes: rest,
            parsed: parse_metered(rest, &meter),
        });
        return Split {
            pieces,
            examined: meter.total(),
        };
    }
}

/// The command being read: its name and the fields after it seen so far.
#[derive(Default)]
struct Current<'a> {
    /// `None` before the name's `|` was seen.
    command: Option<Command>,
    fields: Vec<&'a str>,
}

impl<'a> Current<'a> {
    /// Takes the next field (the name first); false when the command can never be cut.
    fn field(&mut self, field: &'a [u8], meter: &Meter) -> bool {
        meter.add(field.len());
        // A `|` is never inside a UTF-8 sequence, so each field is valid on its own or not.
        let Ok(field) = std::str::from_utf8(field) else {
            return false;
        };
        if self.command.is_none() {
            self.command = Command::from_name(field);
            return self.command.is_some();
        }
        self.fields.push(field);
        true
    }
}

/// The next `|` at or after `at`.
fn find_bar(bytes: &[u8], at: usize, meter: &Meter) -> Option<usize> {
    let found = bytes[at..].iter().position(|&b| b == b'|');
    meter.add(found.map_or(bytes.len() - at, |i| i + 1));
    found.map(|i| at + i)
}

/// At `at` (just after a `|`): a 16-character token followed, after any CR, LF or NUL, by a
/// command name. Returns the token and where the next command starts.
///
/// Each byte is examined a bounded number of times: the token check stops at the first
/// non-alphanumeric byte (at the latest the next `|`), the CR/LF/NUL runs after different
/// tokens do not overlap, and the name check reads at most [`MAX_NAME`] + 1 bytes.
fn cut_after<'a>(bytes: &'a [u8], at: usize, meter: &Meter) -> Option<(&'a str, usize)> {
    let token_end = at + TOKEN_LEN;
    let alnum = bytes[at..]
        .iter()
        .take(TOKEN_LEN)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    meter.add(alnum + 1);
    if alnum < TOKEN_LEN {
        return None;
    }
    let run = bytes[token_end..]
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n' | b'\0'))
        .count();
    meter.add(run + 1);
    let next = token_end + run;
    let name = &bytes[next..bytes.len().min(next + MAX_NAME + 1)];
    meter.add(name.len());
    if !starts_with_command(name) {
        return None;
    }
    // ASCII alphanumerics, so always UTF-8.
    let token = std::str::from_utf8(&bytes[at..token_end]).ok()?;
    Some((token, next))
}

/// Whether `bytes` begin with a command name, ended by `|`, CR, LF, NUL or the end.
pub fn starts_with_command(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(MAX_NAME + 1)];
    let end = head
        .iter()
        .position(|b| matches!(b, b'|' | b'\r' | b'\n' | b'\0'))
        .unwrap_or(head.len());
    std::str::from_utf8(&head[..end])
        .ok()
        .and_then(Command::from_name)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::parse;

    /// The bytes of each piece.
    fn cuts(bytes: &[u8]) -> Vec<&[u8]> {
        commands(bytes).iter().map(|p| p.bytes).collect()
    }

    #[test]
    fn commands_cut_short_are_told_apart() {
        let token = "aB3dE5fG7hJ9kL1m";
        let whole = format!("get_user_info|00124|00124|{token}");
        assert!(!incomplete(whole.as_bytes()));
        assert!(
            incomplete(&whole.as_bytes()[..whole.len() - 3]),
            "token cut"
        );
        assert!(incomplete(b"get_user_group|00124"), "fields missing");
        assert!(
            incomplete("login|名".as_bytes().split_last().unwrap().1),
            "UTF-8 cut"
        );
        for not_cut in [
            "hello",
            "launch_missiles|1|2",
            "login|bob|",
            "get_unread_message|",
        ] {
            assert!(!incomplete(not_cut.as_bytes()), "{not_cut}");
        }
        let first = format!("get_user_friend|00124|{token}");
        let two = format!("{first}{}", &whole[..whole.len() - 3]);
        let pieces = commands(two.as_bytes());
        assert_eq!(pieces[0].bytes, first.as_bytes());
        assert!(
            pieces[1].incomplete(),
            "the cut second command is the one held"
        );
        assert!(!commands(whole.as_bytes())[0].incomplete());
    }

    #[test]
    fn a_read_is_cut_only_after_a_token_followed_by_a_command() {
        let token = "aB3dE5fG7hJ9kL1m";
        let first = format!("get_user_friend|00124|{token}");
        let second = format!("get_user_info|00124|00125|{token}");
        let third = "get_unread_message";
        let glued = format!("{first}{second}\r\n{third}");
        assert_eq!(
            cuts(glued.as_bytes()),
            [first.as_bytes(), second.as_bytes(), third.as_bytes()]
        );
        // A single command, even one whose text holds a command name, stays whole.
        for whole in [
            format!("send_message|0|00124|00125|t|login|x|{token}"),
            format!("send_message|0|00124|00125|t|{token}x|{token}"),
            // Not a 16-character token before the name: the real server's reading.
            "login|alice|e10adc3949ba59abbe56e057f20f883eget_user_friend|1|x".to_owned(),
            // What comes before does not parse: no cut.
            format!("get_user_friend|{token}get_user_friend|00124|{token}"),
            String::new(),
        ] {
            assert_eq!(cuts(whole.as_bytes()), [whole.as_bytes()], "{whole:?}");
        }
        // A message's free text naming a command right after a token-like field is the one
        // ambiguity; the cut gives the token-checked first part and a second command.
        let text = format!("send_message|0|00124|00125|t|hi|{token}login|bob|pw|{token}");
        assert_eq!(commands(text.as_bytes()).len(), 2);
    }

    /// Random reads built from protocol-shaped pieces never panic the parser, and nothing
    /// that is not UTF-8 ever parses.
    #[test]
    fn arbitrary_reads_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"|",
            b"send_message",
            b"login",
            b"create_group",
            b"hand_group_request",
            b"get_unread_message",
            b"00124",
            b"4001",
            b"tok",
            b"aB3dE5fG7hJ9kL1m",
            b"\xff",
            b" ",
            b"\r\n",
            b"\0",
            "你".as_bytes(),
            b"0",
            b"",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let mut read = Vec::new();
            for _ in 0..next() % 12 {
                read.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            if let Ok(request) = parse(&read) {
                assert!(
                    std::str::from_utf8(&read).is_ok(),
                    "{request:?} parsed from invalid UTF-8"
                );
            }
            let split = split(&read);
            let pieces = &split.pieces;
            let kept: usize = pieces.iter().map(|p| p.bytes.len()).sum();
            assert!(kept <= read.len(), "{pieces:?} from {read:?}");
            for piece in &pieces[..pieces.len() - 1] {
                assert!(
                    parse(piece.bytes).is_ok(),
                    "a cut leaves a whole command: {piece:?}"
                );
            }
            for piece in pieces {
                assert_eq!(piece.parsed, parse(piece.bytes), "parsed once, the same");
            }
            assert_eq!(
                cuts(&read),
                reference_cuts(&read),
                "the one-pass reader cuts where the definition does: {read:?}"
            );
            assert!(split.examined <= LINEAR * read.len() + SLACK, "{read:?}");
        }
    }

    /// Bytes examined per byte of input, at most (see [`cut_after`] for why it is bounded).
    const LINEAR: usize = 12;
    const SLACK: usize = 64;

    /// The definition of the cut, read literally (and in quadratic time): at every `|`
    /// followed by a token and a command name, parse everything since the last cut.
    fn reference_cuts(bytes: &[u8]) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let (mut start, mut at) = (0, 0);
        while let Some(bar) = bytes[at..].iter().position(|&b| b == b'|').map(|i| at + i) {
            at = bar + 1;
            let token_end = at + TOKEN_LEN;
            if !bytes
                .get(at..token_end)
                .is_some_and(|token| token.iter().all(u8::is_ascii_alphanumeric))
            {
                continue;
            }
            let next = bytes[token_end..]
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n' | b'\0'))
                .map_or(bytes.len(), |i| token_end + i);
            if starts_with_command(&bytes[next..]) && parse(&bytes[start..token_end]).is_ok() {
                pieces.push(&bytes[start..token_end]);
                start = next;
                at = next;
            }
        }
        pieces.push(&bytes[start..]);
        pieces
    }

    /// Reads crafted so that every `|` is a possible cut that fails: the reading that made
    /// the earlier reader quadratic (it parsed from the command's start at each). The reader
    /// examines each byte a bounded number of times, whatever the length.
    #[test]
    fn crafted_reads_are_read_in_linear_time() {
        let token = "aB3dE5fG7hJ9kL1m";
        // (what it is, the start of the read for a read of `size` bytes, the unit repeated).
        type Crafted = (&'static str, fn(usize) -> String, String);
        let crafted: [Crafted; 5] = [
            (
                "unknown command: no cut can ever succeed",
                |_| "x".into(),
                format!("|{token}login"),
            ),
            (
                "a uid that never parses: each try fails at once",
                |_| "get_user_friend|abc".into(),
                format!("|{token}get_user_friend"),
            ),
            (
                "a long field the old field order copied before the failing check",
                |size| format!("hand_friend_request|1|x|{}", "y".repeat(size / 2)),
                format!("|{token}login"),
            ),
            (
                "cuts that succeed, one after another",
                |_| String::new(),
                format!("get_user_friend|00124|{token}"),
            ),
            (
                "tokens not followed by a command name",
                |_| "send_message|0|00124|00125|t".into(),
                format!("|{token}nothing"),
            ),
        ];
        for (what, prefix, unit) in crafted {
            let mut per_byte = Vec::new();
            for size in [16 * 1024, 64 * 1024, 256 * 1024] {
                let mut read = prefix(size).into_bytes();
                while read.len() < size {
                    read.extend_from_slice(unit.as_bytes());
                }
                let split = split(&read);
                assert!(
                    split.examined <= LINEAR * read.len() + SLACK,
                    "{what}: {} bytes examined for a read of {}",
                    split.examined,
                    read.len()
                );
                per_byte.push(split.examined as f64 / read.len() as f64);
            }
            // The cost per byte does not grow with the length.
            assert!(
                per_byte[2] <= per_byte[0] * 1.1 + 0.1,
                "{what}: {per_byte:?} bytes examined per byte"
            );
        }
    }
}
