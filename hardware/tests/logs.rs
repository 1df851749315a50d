//! Card ids never reach the logs in clear, even at the most verbose level.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::next;
use hardware::vpcd::{self, PORT_0, VirtualCard};
use hardware::{CardEvent, PcscConfig, PcscReader};

/// Everything logged, at every level, from every thread of this test process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn pcsc_logs_never_show_a_card_id_in_clear() {
    if !vpcd::ready_or_skip() {
        return;
    }
    vpcd::wait_until_empty(&vpcd::reader_name(PORT_0), common::WAIT).unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let uid = [0x04, 0x9A, 0x3F, 0x21, 0x7C, 0x55, 0x80];
    let clear = "049A3F217C5580";
    let mut reader = PcscReader::spawn(PcscConfig { readers: vec!["Virtual PCD".into()], ..PcscConfig::default() }).unwrap();
    let card = VirtualCard::insert(PORT_0, &uid).unwrap();
    let event = next(&mut reader).await;
    assert!(matches!(&event, CardEvent::Inserted { card, .. } if card.expose() == clear), "{event:?}");
    tracing::info!(?event, "the agent logs the event it got");
    card.remove();
    assert!(matches!(next(&mut reader).await, CardEvent::Removed { .. }));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("card identified"), "the reader logged the card, redacted:\n{logs}");
    assert!(logs.contains("…5580"), "{logs}");
    for prefix in [&clear[..6], "049A", "9A3F"] {
        assert!(!logs.contains(prefix), "{prefix} in the logs:\n{logs}");
    }
}
