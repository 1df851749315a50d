//! The consoles' pages: reception, pit, cashier desk, bar and management.

use super::Route;

pub(super) fn routes() -> Vec<Route> {
    Vec::new()
}
