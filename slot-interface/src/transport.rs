//! The serial port under the SAS stack: 19 200 baud, 8 data bits, 1 stop bit, and the ninth
//! "wakeup" bit that marks the first byte of every host message (§1.2.1).
//!
//! Key decision: two modes. [`LinkMode::Wakeup`] is a real UART: the wakeup bit is the parity
//! bit, mark parity (PARENB|CMSPAR|PARODD) for the first byte of a host message and space parity
//! (PARENB|CMSPAR) for everything else; on receive, space parity with PARMRK makes the UART flag
//! every wakeup byte as a parity error, which [`MarkDecoder`] turns back into a flag.
//! [`LinkMode::Plain`] is a pty or a serial link without the ninth bit (a pty silently drops
//! parity): bytes go out as they are and the receiver frames by content and timing.
//!
//! What it does not do: no protocol. It moves bytes; the poller and the simulator decide what
//! they mean. Parity changes are made through a second descriptor of the same tty because
//! termios settings belong to the device, not to a descriptor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use nix::sys::termios::{self, ControlFlags, InputFlags, SetArg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{DataBits, FlowControl, Parity, SerialStream, StopBits};

use crate::Error;

/// SAS line speed (§1.2).
pub const BAUD: u32 = 19_200;

/// How the ninth bit is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// A real UART: wakeup bit as mark/space parity.
    Wakeup,
    /// A pty or plain link: no ninth bit; framing by content and timing.
    Plain,
}

/// One received byte, with its wakeup bit when the mode carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxByte {
    pub byte: u8,
    /// `Some(true)` for a byte sent with the wakeup bit; `None` in [`LinkMode::Plain`].
    pub wakeup: Option<bool>,
}

/// Undoes the PARMRK marking of a tty receiving with space parity: `FF 00 b` is `b` with the
/// wakeup bit, `FF FF` is a literal `FF`. Keeps state across reads.
#[derive(Debug, Default, Clone)]
pub struct MarkDecoder {
    state: MarkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum MarkState {
    #[default]
    Normal,
    Escape,
    Marked,
}

impl MarkDecoder {
    /// Decodes raw tty input, appending to `out`.
    pub fn decode(&mut self, raw: &[u8], out: &mut Vec<RxByte>) {
        for &b in raw {
            self.state = match (self.state, b) {
                (MarkState::Normal, 0xFF) => MarkState::Escape,
                (MarkState::Normal, b) => {
                    out.push(RxByte { byte: b, wakeup: Some(false) });
                    MarkState::Normal
                }
                (MarkState::Escape, 0xFF) => {
                    out.push(RxByte { byte: 0xFF, wakeup: Some(false) });
                    MarkState::Normal
                }
                (MarkState::Escape, 0x00) => MarkState::Marked,
                (MarkState::Escape, b) => {
                    // Not a sequence PARMRK produces; keep both bytes rather than lose one.
                    out.push(RxByte { byte: 0xFF, wakeup: Some(false) });
                    out.push(RxByte { byte: b, wakeup: Some(false) });
                    MarkState::Normal
                }
                (MarkState::Marked, b) => {
                    out.push(RxByte { byte: b, wakeup: Some(true) });
                    MarkState::Normal
                }
            };
        }
    }
}

/// A SAS serial port.
pub struct SasPort {
    stream: SerialStream,
    mode: LinkMode,
    /// Second descriptor of the same tty, for parity changes and marked writes.
    control: Option<Arc<File>>,
    marks: MarkDecoder,
    raw: Vec<u8>,
}

impl SasPort {
    /// Opens a serial device (or a pty path) at 19 200 baud 8N1 in the given mode.
    pub fn open(path: &str, mode: LinkMode) -> Result<SasPort, Error> {
        // The control descriptor is opened first: the serial port is opened exclusive (TIOCEXCL),
        // which would refuse a later open.
        let control = match mode {
            LinkMode::Wakeup => Some(Arc::new(
                OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NOCTTY).open(path)?,
            )),
            LinkMode::Plain => None,
        };
        let builder = tokio_serial::new(path, BAUD)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None);
        let stream = SerialStream::open(&builder)?;
        if let Some(file) = &control {
            set_parity(file, Wakeup::Space, SetArg::TCSANOW)?;
        }
        Ok(SasPort { stream, mode, control, marks: MarkDecoder::default(), raw: vec![0; 512] })
    }

    /// A port over an already open stream (e.g. one end of `SerialStream::pair()`), plain mode.
    pub fn from_stream(stream: SerialStream) -> SasPort {
        SasPort { stream, mode: LinkMode::Plain, control: None, marks: MarkDecoder::default(), raw: vec![0; 512] }
    }

    /// The mode.
    pub fn mode(&self) -> LinkMode {
        self.mode
    }

    /// Sends a host message: wakeup bit on the first byte, cleared on the rest.
    pub async fn send_message(&mut self, message: &[u8]) -> Result<(), Error> {
        self.send_marked(message).await
    }

    /// Sends bytes without the wakeup bit (a machine's answer).
    pub async fn send_data(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // No flush: on a serial stream it is tcdrain, a blocking wait for the UART (half a
        // millisecond a byte) on the async thread. The poller already allows for the wire time.
        AsyncWriteExt::write_all(&mut self.stream, bytes).await?;
        Ok(())
    }

    /// Sends one byte with the wakeup bit (a machine's chirp, §4.2).
    pub async fn send_chirp(&mut self, byte: u8) -> Result<(), Error> {
        self.send_marked(&[byte]).await
    }

    async fn send_marked(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let Some(file) = self.control.clone() else {
            return self.send_data(bytes).await;
        };
        let bytes = bytes.to_vec();
        // tcsetattr(TCSADRAIN) waits for the UART to send what is queued, about half a
        // millisecond a byte: done off the async threads.
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let Some((first, rest)) = bytes.split_first() else { return Ok(()) };
            set_parity(&file, Wakeup::Mark, SetArg::TCSADRAIN)?;
            (&*file).write_all(&[*first])?;
            set_parity(&file, Wakeup::Space, SetArg::TCSADRAIN)?;
            (&*file).write_all(rest)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
    }

    /// Waits for bytes and appends them to `out`; returns how many were added.
    pub async fn recv(&mut self, out: &mut Vec<RxByte>) -> Result<usize, Error> {
        let n = AsyncReadExt::read(&mut self.stream, &mut self.raw).await?;
        if n == 0 {
            return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let before = out.len();
        match self.mode {
            LinkMode::Wakeup => self.marks.decode(&self.raw[..n], out),
            LinkMode::Plain => out.extend(self.raw[..n].iter().map(|&byte| RxByte { byte, wakeup: None })),
        }
        Ok(out.len() - before)
    }

    /// Waits for bytes and appends their values to `out` (the host ignores wakeup bits).
    pub async fn recv_bytes(&mut self, out: &mut Vec<u8>) -> Result<usize, Error> {
        let mut marked = Vec::new();
        let n = self.recv(&mut marked).await?;
        out.extend(marked.iter().map(|b| b.byte));
        Ok(n)
    }
}

#[derive(Clone, Copy)]
enum Wakeup {
    Mark,
    Space,
}

/// Parity as the ninth bit: PARENB|CMSPAR, PARODD for mark; input parity checking with
/// PARMRK so wakeup bytes reach us flagged.
fn set_parity(file: &File, wakeup: Wakeup, when: SetArg) -> Result<(), Error> {
    let mut t = termios::tcgetattr(file)?;
    t.control_flags.insert(ControlFlags::PARENB | ControlFlags::CMSPAR);
    match wakeup {
        Wakeup::Mark => t.control_flags.insert(ControlFlags::PARODD),
        Wakeup::Space => t.control_flags.remove(ControlFlags::PARODD),
    }
    t.input_flags.insert(InputFlags::INPCK | InputFlags::PARMRK);
    t.input_flags.remove(InputFlags::IGNPAR | InputFlags::ISTRIP);
    termios::tcsetattr(file, when, &t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<(u8, bool)> {
        let mut d = MarkDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            d.decode(chunk, &mut out);
        }
        out.iter().map(|b| (b.byte, b.wakeup == Some(true))).collect()
    }

    #[test]
    fn a_parity_marked_byte_is_a_wakeup_byte() {
        assert_eq!(decode(&[&[0xFF, 0x00, 0x01, 0x1F]]), [(0x01, true), (0x1F, false)]);
    }

    #[test]
    fn a_doubled_ff_is_a_literal_ff() {
        assert_eq!(decode(&[&[0x01, 0xFF, 0xFF, 0x02]]), [(0x01, false), (0xFF, false), (0x02, false)]);
    }

    #[test]
    fn marks_split_across_reads_are_kept() {
        assert_eq!(decode(&[&[0xFF], &[0x00], &[0x81]]), [(0x81, true)]);
        assert_eq!(decode(&[&[0x05, 0xFF], &[0xFF]]), [(0x05, false), (0xFF, false)]);
    }

    #[test]
    fn an_unexpected_escape_keeps_both_bytes() {
        assert_eq!(decode(&[&[0xFF, 0x42]]), [(0xFF, false), (0x42, false)]);
    }
}
