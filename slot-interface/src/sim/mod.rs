//! A gaming machine simulator that speaks SAS, for tests, demos and the `egm-sim` binary.
//!
//! [`Egm`] is the machine as a pure state machine (meters, games, exceptions, AFT); [`runner`]
//! puts it on a serial port with a control channel and the misbehaviours tests need;
//! [`store`] keeps its meters on disk so a restart continues them; [`game`] draws outcomes at
//! the configured return to player.
//!
//! Key decision: the simulator is built from the same codec as the host but its link rules
//! (synchronisation, implied ACK/NACK, real-time priority, chirping) are written from the
//! machine's side of the specification, and an independent Python SAS host checks it too, so
//! the host is not only tested against its own mirror image.

pub mod game;
pub mod loopback;
pub mod machine;
pub mod runner;
pub mod store;

pub use machine::{Egm, SimConfig};
pub use runner::{spawn, Control, RunOptions, SimHandle};
pub use store::{Store, Stored};
