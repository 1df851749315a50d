//! The terminal agent: runs beside a slot machine, a bar POS or a table, reads club cards, keeps
//! an outbox of events and streams them to the floor server.

pub mod link;
