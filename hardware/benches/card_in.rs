//! Card-in latency through pcscd and vsmartcard's virtual reader, from inserting the virtual card
//! to the reader's `Inserted` event, with baselines measured in the same run by a bare
//! `SCardGetStatusChange` loop on the same reader: when it sees the card, and (in rounds of its
//! own, so the two never compete for the card) when it has also connected and read the UID. The
//! difference between `PcscReader` and the second baseline is what this crate adds. Prints
//! medians; skips without pcscd.
//!
//! `cargo bench -p hardware --bench card_in`

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use hardware::apdu::GET_UID;
use hardware::vpcd::{self, PORT_0, VirtualCard};
use hardware::{CardEvent, CardReader, PcscConfig, PcscReader};

const ROUNDS: usize = 11;
const WAIT: Duration = Duration::from_secs(10);

/// Watches `reader` with a bare status-change loop until `stop`. On every card arrival it sends
/// the time it saw the card and, when `read_uid`, the time it had connected and read the UID.
fn bare_watcher(reader: &str, read_uid: bool, stop: &AtomicBool, arrivals: mpsc::Sender<(Instant, Option<Instant>)>) {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("pcscd answers");
    let name = CString::new(reader).expect("no NUL in a reader name");
    let mut states = [pcsc::ReaderState::new(name.clone(), pcsc::State::UNAWARE)];
    let mut present = false;
    // A short timeout to look at `stop`: a cancel between two waits would be lost.
    while !stop.load(Ordering::Relaxed) {
        match ctx.get_status_change(Duration::from_millis(100), &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => continue,
            Err(e) => panic!("bare loop: {e}"),
        }
        let now_present = states[0].event_state().contains(pcsc::State::PRESENT);
        if now_present && !present {
            let seen = Instant::now();
            let uid_read = read_uid.then(|| {
                let mut card = ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).expect("connect");
                let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
                // As the reader does: once more after a reset by another client.
                let mut answer = card.transmit(&GET_UID, &mut buffer).map(<[u8]>::to_vec);
                if let Err(pcsc::Error::ResetCard) = answer {
                    card.reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::ANY, pcsc::Disposition::LeaveCard)
                        .expect("reconnect");
                    answer = card.transmit(&GET_UID, &mut buffer).map(<[u8]>::to_vec);
                }
                let answer = answer.expect("GET DATA");
                assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
                Instant::now()
            });
            if arrivals.send((seen, uid_read)).is_err() {
                return;
            }
        }
        present = now_present;
        states[0].sync_current_state();
    }
}

type Arrivals = mpsc::Receiver<(Instant, Option<Instant>)>;

fn spawn_watcher(reader: &str, read_uid: bool) -> (Arc<AtomicBool>, Arrivals, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, arrivals) = mpsc::channel();
    let watcher = std::thread::spawn({
        let (stop, name) = (Arc::clone(&stop), reader.to_owned());
        move || bare_watcher(&name, read_uid, &stop, tx)
    });
    (stop, arrivals, watcher)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn uid(round: usize) -> [u8; 7] {
    [0x04, 0x10, 0x20, 0x30, 0x40, 0x50, round as u8]
}

/// Inserts and removes the card `ROUNDS` times; per round, the bare loop's times and the
/// reader's `Inserted` time, all from the insertion.
fn rounds(
    runtime: &tokio::runtime::Runtime,
    reader: Option<&mut CardReader>,
    bare: &Arrivals,
) -> Vec<(Duration, Option<Duration>, Option<Duration>)> {
    let mut reader = reader;
    let mut out = Vec::new();
    for round in 0..ROUNDS {
        let inserted_at = Instant::now();
        let card = VirtualCard::insert(PORT_0, &uid(round)).expect("the card goes in");
        let ours = reader.as_deref_mut().map(|reader| {
            let event = runtime.block_on(async { tokio::time::timeout(WAIT, reader.next_event()).await });
            assert!(matches!(event, Ok(Some(CardEvent::Inserted { .. }))), "round {round}: {event:?}");
            inserted_at.elapsed()
        });
        let (seen, uid_read) = bare.recv_timeout(WAIT).expect("the bare loop saw the card");
        out.push((seen - inserted_at, uid_read.map(|t| t - inserted_at), ours));
        card.remove();
        if let Some(reader) = reader.as_deref_mut() {
            let gone = runtime.block_on(async { tokio::time::timeout(WAIT, reader.next_event()).await });
            assert!(matches!(gone, Ok(Some(CardEvent::Removed { .. }))), "round {round}: {gone:?}");
        }
        vpcd::wait_until_empty(&vpcd::reader_name(PORT_0), WAIT).expect("the card went out");
    }
    out
}

fn main() {
    if !vpcd::ready_or_skip() {
        return;
    }
    let reader_name = vpcd::reader_name(PORT_0);
    vpcd::wait_until_empty(&reader_name, WAIT).expect("the virtual reader is empty");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");

    // Baseline rounds: the bare loop sees the card and reads its UID itself.
    let (stop, arrivals, watcher) = spawn_watcher(&reader_name, true);
    let baseline = rounds(&runtime, None, &arrivals);
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("the bare loop ends");

    // Reader rounds: PcscReader reads the UID; the bare loop only watches.
    let (stop, arrivals, watcher) = spawn_watcher(&reader_name, false);
    let mut reader = PcscReader::spawn(PcscConfig {
        readers: vec![reader_name.clone()],
        hold: Duration::from_millis(100),
        ..PcscConfig::default()
    })
    .expect("the reader starts");
    let measured = rounds(&runtime, Some(&mut reader), &arrivals);
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("the bare loop ends");

    let bare_uid: Vec<Duration> = baseline.iter().filter_map(|r| Some(r.1? - r.0)).collect();
    let ours_uid: Vec<Duration> = measured.iter().filter_map(|r| Some(r.2?.saturating_sub(r.0))).collect();
    println!("card-in latency, median of {ROUNDS} insertions per row (pcscd polls vpcd every 400 ms)");
    println!("  baseline: bare loop sees the card              {:>8.1?}", median(baseline.iter().map(|r| r.0).collect()));
    println!("  baseline: bare connect + GET DATA, after seeing {:>8.1?}", median(bare_uid));
    println!("  PcscReader Inserted with UID, after bare seeing {:>8.1?}", median(ours_uid));
    println!("  PcscReader Inserted with UID, from insertion   {:>8.1?}", median(measured.iter().filter_map(|r| r.2).collect()));
}
