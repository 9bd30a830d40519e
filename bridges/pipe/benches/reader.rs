//! CPU cost of reading one 64 KiB read into commands: harmless reads against reads crafted so
//! that every `|` is a possible cut that fails (the input that made the earlier reader
//! quadratic). `cargo bench -p rosetta-bridge-pipe --bench reader`; `PIPE_BENCH_ROUNDS`
//! (default 50) rounds of 20 reads each.

use std::time::Instant;

use rosetta_bridge_pipe::codec::{Piece, commands};
use rosetta_testkit::bench::env_or as env;

const READ: usize = 64 * 1024;

/// What the session does with one read: cut it, hold a last command cut short, keep the rest.
fn read(bytes: &[u8]) -> usize {
    let mut pieces = commands(bytes);
    let held = pieces.pop_if(|last| bytes.len() < READ && last.incomplete());
    let parsed: Vec<_> = pieces
        .into_iter()
        .map(|piece: Piece| piece.parsed)
        .collect();
    parsed.iter().filter(|p| p.is_ok()).count() + held.map_or(0, |p| p.bytes.len())
}

fn fill(prefix: &str, unit: &str) -> Vec<u8> {
    let mut read = prefix.as_bytes().to_vec();
    while read.len() + unit.len() <= READ {
        read.extend_from_slice(unit.as_bytes());
    }
    read
}

fn main() {
    let rounds: u32 = env("PIPE_BENCH_ROUNDS", 50);
    let token = "aB3dE5fG7hJ9kL1m";
    let reads = [
        (
            "harmless: send_message, 64 KiB text",
            fill("send_message|0|00124|00125|t|", "x"),
        ),
        ("harmless: 64 KiB of spaces", vec![b' '; READ]),
        (
            "crafted: unknown name, token|login cuts",
            fill("x", &format!("|{token}login")),
        ),
        (
            "crafted: bad uid, token|command cuts",
            fill("get_user_friend|abc", &format!("|{token}get_user_friend")),
        ),
        (
            "crafted: long field, failing cuts",
            fill(
                &format!("hand_friend_request|1|x|{}", "y".repeat(30_000)),
                &format!("|{token}login"),
            ),
        ),
    ];
    for (name, bytes) in &reads {
        let start = Instant::now();
        let mut sink = 0;
        for _ in 0..rounds {
            for _ in 0..20 {
                sink += read(std::hint::black_box(bytes));
            }
        }
        let per_20 = start.elapsed() / rounds;
        println!(
            "{name:42} 20 reads of {} B: {per_20:>10.3?} (sink {sink})",
            bytes.len()
        );
    }
}
