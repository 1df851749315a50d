//! Waiting helpers shared by the integration tests: every wait has a deadline.

use std::time::Duration;

use hardware::{CardEvent, CardReader};
use tokio::time::{Instant, timeout};

/// Longest wait for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// The reader's next event, failing the test after [`WAIT`].
pub async fn next(reader: &mut CardReader) -> CardEvent {
    timeout(WAIT, reader.next_event()).await.expect("no card event within the deadline").expect("the reader stopped")
}

/// Fails the test if an event arrives within `period`.
#[allow(dead_code, reason = "not every test binary needs it")]
pub async fn quiet_for(reader: &mut CardReader, period: Duration) {
    if let Ok(event) = timeout(period, reader.next_event()).await {
        panic!("unexpected event {event:?}");
    }
}

/// Waits until `condition` holds, re-checking every 10 ms, failing the test after [`WAIT`].
#[allow(dead_code, reason = "not every test binary needs it")]
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
