//! Fuzzes the codec with arbitrary bytes: both decoders (host messages and machine answers for
//! every kind of expectation), the machine-side framer, and the trace decoder must never panic;
//! a host message that decodes must encode, and its encoding must decode to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slot_interface::codec::{Expect, HostFramer, HostMessage, Response};
use slot_interface::transport::RxByte;
use slot_interface::Address;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };

    // Host messages: whatever decodes encodes, and the encoding means the same.
    if let Ok(Some((message, _))) = HostMessage::decode(bytes) {
        let encoded = message.encode().expect("a decoded message encodes");
        let (again, used) = HostMessage::decode(&encoded).expect("its encoding decodes").expect("whole");
        assert_eq!((again, used), (message, encoded.len()));
    }

    // Machine answers, against every expectation.
    let address = Address::new((selector & 0x7F).max(1)).expect("1..=127");
    let expects = [
        Expect::GeneralPoll,
        Expect::RealTimeGeneralPoll,
        Expect::LongPoll { command: bytes.get(1).copied().unwrap_or(0), ack: selector & 0x80 != 0 },
    ];
    for expect in expects {
        for quiet in [false, true] {
            if let Ok(Some((response, used))) = Response::decode(address, expect, bytes, quiet) {
                assert!(used >= 1 && used <= bytes.len());
                let _ = response.encode(address);
            }
        }
    }

    // The machine-side framer, with wakeup marks taken from the selector.
    let marked: Vec<RxByte> = bytes
        .iter()
        .enumerate()
        .map(|(i, &byte)| RxByte { byte, wakeup: (selector & 1 == 1).then_some(i % 7 == 0) })
        .collect();
    let mut framer = HostFramer::new(std::time::Duration::from_millis(5));
    let _ = framer.push(&marked, std::time::Instant::now());

    // The trace decoder, fed the bytes as a capture in both directions.
    let mut decoder = slot_interface::trace::Decoder::new();
    for (i, chunk) in bytes.chunks(5).enumerate() {
        let direction = if i % 2 == 0 { slot_interface::trace::Direction::Host } else { slot_interface::trace::Direction::Machine };
        let _ = decoder.feed(&slot_interface::trace::CaptureLine { time: None, direction, bytes: chunk.to_vec() });
    }
    let _ = decoder.finish();
});
