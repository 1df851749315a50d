//! The crate's one error type.
//!
//! Key decision: the two layers of failure stay apart. Transport and link failures (IO, no
//! answer, a frame that never checks out) are distinct variants from protocol answers (NACK,
//! busy, an AFT refusal), so a caller decides on the variant, never on a message string.

use crate::frame::Address;

/// Why bytes from the line do not make a frame. Carried by [`Error::Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// The CRC does not match (§5).
    Crc,
    /// Bytes that cannot start a frame here (resynchronise past them).
    Garbage,
    /// A long poll command this crate does not implement; machines ignore those (§4.4).
    Unsupported(u8),
    /// A field with an impossible value, e.g. a BCD nibble above 9 or a length that does not fit.
    Field(&'static str),
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- wire values -------------------------------------------------------------------------
    /// A machine address outside 1..=127.
    #[error("machine address {0} is outside 1..=127")]
    BadAddress(u8),
    /// A value that does not fit in its BCD field.
    #[error("{value} does not fit in {bytes} BCD bytes")]
    BcdOverflow { value: u64, bytes: usize },
    /// Bytes that are not packed BCD.
    #[error("not packed BCD: {0:02X?}")]
    BadBcd(Vec<u8>),
    /// A denomination code that is not a whole-cent entry of Table C-4.
    #[error("denomination code {0:#04x} is unknown or a fraction of a cent")]
    UnknownDenomination(u8),
    /// A denomination value without a Table C-4 code.
    #[error("no SAS denomination code for {0} cents")]
    NoDenominationCode(u32),
    /// A credit or cent amount too large to express.
    #[error("amount {0} is out of range")]
    AmountOutOfRange(u64),
    /// An AFT transaction id that is not 1 to 20 printable ASCII characters (§8).
    #[error("AFT transaction id must be 1 to 20 printable ASCII characters")]
    BadTransactionId,
    /// An amount that cannot be sent (zero, negative, fractions of a cent, too large).
    #[error("amount {0} cannot be transferred")]
    BadAmount(String),
    /// A message that cannot be encoded as asked (e.g. more than ten meters in one 0x2F poll).
    #[error("cannot encode: {0}")]
    Encode(&'static str),

    // --- framing -------------------------------------------------------------------------------
    /// Bytes that do not make a valid frame; `skip` bytes should be dropped to resynchronise.
    #[error("bad frame ({fault:?}), skip {skip} bytes")]
    Frame { fault: FrameFault, skip: usize },

    // --- link (transport layer) ----------------------------------------------------------------
    /// Serial device or file IO failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Opening or configuring the serial port failed.
    #[error("serial port: {0}")]
    Serial(#[from] tokio_serial::Error),
    /// Setting the wakeup (mark/space parity) mode failed.
    #[error("termios: {0}")]
    Termios(#[from] nix::Error),
    /// The machine did not answer correctly after every retry (timeouts or bad CRCs, §3.2).
    #[error("machine {0} did not answer")]
    NoResponse(Address),
    /// The link to the machine is down (no valid answer for the configured time, §4.3).
    #[error("link to machine {0} is down")]
    LinkDown(Address),
    /// The host task has stopped (the port closed or the host was dropped).
    #[error("the SAS host has stopped")]
    HostStopped,
    /// The address is not polled by this host.
    #[error("machine {0} is not on this line")]
    UnknownMachine(Address),

    // --- protocol answers ----------------------------------------------------------------------
    /// The machine negatively acknowledged the long poll (address with bit 7 set).
    #[error("machine {address} refused long poll {command:#04x} (NACK)")]
    Nacked { address: Address, command: u8 },
    /// The machine answered busy (`addr 00`, §4.1) on every attempt.
    #[error("machine {address} stayed busy for long poll {command:#04x}")]
    Busy { address: Address, command: u8 },
    /// The machine answered with a message that does not answer the poll.
    #[error("machine {address} answered long poll {command:#04x} with something else")]
    UnexpectedResponse { address: Address, command: u8 },
    /// AFT is not possible: the machine is not registered and registration failed (§8.1).
    #[error("machine {0} is not registered for AFT")]
    AftNotRegistered(Address),
    /// The machine would not lock for the transfer (§8.2): its lock status byte.
    #[error("machine {address} did not lock for AFT (lock status {status:#04x})")]
    AftLockFailed { address: Address, status: u8 },
    /// The transfer stayed pending past the deadline; interrogate again with the same id.
    #[error("AFT transfer on machine {0} still pending")]
    AftPending(Address),

    // --- simulator -----------------------------------------------------------------------------
    /// The simulator's meter file could not be read or written.
    #[error("meter store {path}: {reason}")]
    Store { path: String, reason: String },
    /// A simulator control command that does not parse.
    #[error("bad control command: {0}")]
    Control(String),
}
