//! Arbitrary bytes into `FrameHeader::parse`.
//!
//! Checks: never panics; a parsed header consumed at most the input, between
//! 2 and 14 bytes; it re-encodes to exactly the bytes it was parsed from
//! (lengths must be minimal, RSV2/RSV3 never pass) and parses back to itself;
//! every strict prefix of those bytes asks for more; `Ok(None)` only for
//! inputs shorter than a full header; every error is a 1002.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_ws::FrameHeader;
use switchboard_ws::frame::MAX_HEADER_LEN;

fuzz_target!(|data: &[u8]| {
    match FrameHeader::parse(data) {
        Ok(Some((header, used))) => {
            assert!(used <= data.len(), "consumed {used} of {}", data.len());
            assert!((2..=MAX_HEADER_LEN).contains(&used));
            let encoded = header.encode();
            assert_eq!(encoded.as_slice(), &data[..used], "{header:?}");
            assert_eq!(
                FrameHeader::parse(encoded.as_slice()),
                Ok(Some((header, used)))
            );
            for cut in 0..used {
                assert_eq!(FrameHeader::parse(&data[..cut]), Ok(None), "cut {cut}");
            }
            if header.opcode.is_control() {
                assert!(header.fin && header.payload_len <= 125);
            }
            assert!(header.payload_len < 1 << 63);
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN),
        Err(e) => assert_eq!(e.close_code().as_u16(), 1002, "{e:?}"),
    }
});
