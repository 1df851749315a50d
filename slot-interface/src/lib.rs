//! The SAS (Slot Accounting System) host stack that the terminal agent uses to talk to slot
//! machines, a simulator of a gaming machine that speaks SAS, and a decoder for captured traffic.
//!
//! Layers, inside out (section numbers refer to SAS 6.02):
//! - [`frame`]: addresses, CRC-16/KERMIT, BCD and binary fields, code tables.
//! - [`codec`] and [`aft`]: typed messages in both directions and their bytes.
//! - [`poller`]: the host's link layer as a pure state machine (poll schedule, retries, implied
//!   ACK/NACK, link state, events) driven by `handle_input(bytes, now)`, `poll_transmit(now)`
//!   and `poll_timeout()`.
//! - [`session`]: per-machine application logic (start-up sequence, events in money).
//! - [`transport`]: the tokio-serial port, with the wakeup bit as mark/space parity on a real
//!   UART or content-and-timing framing on a pty.
//! - [`host`]: the async API for the terminal agent: [`SasHost`], [`MachineLink`], [`Event`].
//! - [`sim`]: a gaming machine simulator (also the `egm-sim` binary); [`trace`]: the decoder
//!   behind `sas-trace`.
//!
//! Key decision: everything below `transport` is sans-IO (no tokio, no clock, no randomness of
//! its own), so the protocol is tested by driving time by hand. What this crate does not do:
//! club rules (points, sessions) belong to the terminal agent and the floor server.

pub mod aft;
pub mod codec;
mod error;
pub mod frame;
pub mod host;
pub mod poller;
pub mod session;
pub mod sim;
pub mod trace;
pub mod transport;

pub use aft::{AftOutcome, AftSettings, TransactionId};
pub use error::{Error, FrameFault};
pub use frame::{Address, Denomination, ExceptionCode, MeterCode, MeterUnit};
pub use host::{MachineLink, MeterReading, MeterSnapshot, SasHost};
pub use session::{Door, Event, HostConfig};
pub use transport::{LinkMode, SasPort};
