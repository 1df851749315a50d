//! The two binaries as a user runs them: `sas-trace` on a capture file and on stdin, and
//! `egm-sim` refusing bad options with a clear message.

use std::io::Write;
use std::process::{Command, Stdio};

const CAPTURE: &str = "\
# a session captured at a machine
12:00:00.000 TX 80 81
12:00:00.002 RX 00
12:00:00.200 TX 01 1A
12:00:00.203 RX 01 1A 00 00 12 34 45 2D
12:00:00.400 TX 01 1A
12:00:00.403 RX 01 1A 00 00 12 34 45 2E
12:00:00.600 TX 01 8A 00 00 00 10 00 E8 26
12:00:00.602 RX 01
12:00:00.800 XX 01
";

#[test]
fn sas_trace_decodes_a_capture_file_one_message_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.txt");
    std::fs::write(&path, CAPTURE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sas-trace")).arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10, "{text}");
    assert!(lines[4].contains("CurrentCredits 1234") && lines[4].ends_with("crc ok"));
    assert!(lines[6].contains("bad answer") && lines[6].ends_with("crc BAD"), "{}", lines[6]);
    assert!(lines[7].contains("legacy bonus 10 credits") && lines[7].ends_with("crc ok"));
    assert!(lines[8].starts_with("line 10: unknown direction"), "{}", lines[8]);
    // A lone byte could still grow into a longer answer: it is decided when the capture ends.
    assert!(lines[9].contains("M< 01  ACK"), "{}", lines[9]);
}

#[test]
fn sas_trace_reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sas-trace"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"H 81\nM 7E\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("exception 7E game started"), "{text}");
}

#[test]
fn egm_sim_refuses_bad_options_with_a_clear_message() {
    let rows = [
        (vec!["/dev/null", "--game", "bingo"], "unknown game type"),
        (vec!["/dev/null", "--address", "0"], "outside 1..=127"),
        (vec!["/dev/null", "--denomination-cents", "7"], "no SAS denomination code for 7 cents"),
        (vec!["/nonexistent/tty"], "opening /nonexistent/tty"),
    ];
    for (args, message) in rows {
        let out = Command::new(env!("CARGO_BIN_EXE_egm-sim")).args(&args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{args:?}: {stderr}");
    }
}
