//! `sas-trace [FILE]`: decodes a captured SAS hex stream (host and machine directions) into one
//! readable message per line with a CRC verdict. Reads standard input without FILE. The input
//! format is described in `slot_interface::trace`.

use std::io::{BufRead, Write};

use anyhow::Context;
use clap::Parser;
use slot_interface::trace::{parse_line, Decoder};

/// Decode a captured SAS stream.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Capture file: lines of `[time] H|M hex bytes`. Standard input if absent.
    file: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut out = std::io::stdout().lock();
    let mut decoder = Decoder::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading the capture")?;
        match parse_line(&line) {
            Ok(Some(capture)) => {
                for decoded in decoder.feed(&capture) {
                    writeln!(out, "{decoded}")?;
                }
            }
            Ok(None) => {}
            Err(e) => writeln!(out, "line {}: {e}", n + 1)?,
        }
    }
    for decoded in decoder.finish() {
        writeln!(out, "{decoded}")?;
    }
    Ok(())
}
