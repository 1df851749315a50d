//! Throughput of the serial frame decoders, with a baseline measured in the same run: one pass that
//! only folds every byte (the least any decoder must do). Prints medians of several runs.
//!
//! `cargo bench -p hardware --bench decode`

use std::hint::black_box;
use std::time::{Duration, Instant};

use hardware::serial::frame::{rdm6300_frame, track2_frame};
use hardware::serial::{Charset, FrameDecoder, LineFormat, SerialFormat};

const RUNS: usize = 15;
const SIZE: usize = 4 << 20;

/// The median time of `RUNS` calls of `f`.
fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// `pattern` repeated up to [`SIZE`] bytes.
fn repeat(pattern: &[u8]) -> Vec<u8> {
    pattern.iter().copied().cycle().take(SIZE).collect()
}

/// Pseudo-random bytes with a good RDM6300 frame after every 4 KiB.
fn garbage_with_frames() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut out = Vec::with_capacity(SIZE + SIZE / 256);
    while out.len() < SIZE {
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(state as u8);
        }
        out.extend_from_slice(&rdm6300_frame([0x0F, 0x00, 0x28, 0x5A, 0x3C]));
    }
    out
}

/// Decodes `input`: (ids, rejections).
fn decode(format: &SerialFormat, input: &[u8]) -> (usize, usize) {
    let mut decoder = FrameDecoder::new(format);
    let (mut ids, mut rejected) = (0, 0);
    for &byte in input {
        match decoder.push(byte) {
            Some(Ok(_)) => ids += 1,
            Some(Err(_)) => rejected += 1,
            None => {}
        }
    }
    (ids, rejected)
}

/// Megabytes per second, as a whole number (bytes per microsecond).
fn mb_per_s(bytes: usize, time: Duration) -> u128 {
    bytes as u128 / time.as_micros().max(1)
}

fn main() {
    let line = SerialFormat::Line(LineFormat::new(b"", b"\r\n", Charset::Decimal, 10, 10).expect("a valid format"));
    let mut swipe = track2_frame("6012345678901234=2912101123456789", true);
    swipe.extend_from_slice(b"\r\n");
    let cases = [
        ("RDM6300 frames", SerialFormat::Em4100, repeat(&rdm6300_frame([0x0F, 0x00, 0x28, 0x5A, 0x3C]))),
        ("RDM6300 in garbage", SerialFormat::Em4100, garbage_with_frames()),
        ("track 2 swipes, LRC", SerialFormat::Track2 { lrc: true }, repeat(&swipe)),
        ("decimal lines", line, repeat(b"0004718592\r\n")),
    ];
    println!("{} MiB per case, median of {RUNS} runs", SIZE >> 20);
    println!("{:<22} {:>14} {:>14} {:>10} {:>9} {:>9}", "case", "baseline MB/s", "decoder MB/s", "ns/byte", "ids", "rejected");
    for (name, format, input) in &cases {
        let base = median(|| {
            black_box(black_box(input.as_slice()).iter().fold(0u8, |acc, b| acc ^ b));
        });
        let mut counts = (0, 0);
        let time = median(|| counts = decode(black_box(format), black_box(input)));
        let ns_per_byte_x100 = time.as_nanos() * 100 / input.len() as u128;
        println!(
            "{name:<22} {:>14} {:>14} {:>7}.{:02} {:>9} {:>9}",
            mb_per_s(input.len(), base),
            mb_per_s(input.len(), time),
            ns_per_byte_x100 / 100,
            ns_per_byte_x100 % 100,
            counts.0,
            counts.1
        );
    }
}
