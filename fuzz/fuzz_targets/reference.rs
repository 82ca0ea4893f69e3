//! Image reference parsing on any text: an error or a reference whose full form parses back to
//! the same reference, never a panic.
#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(text) {
        let full = r.full();
        let again = Reference::parse(&full)
            .unwrap_or_else(|e| panic!("{text:?} parsed, but its full form {full:?} not: {e}"));
        assert_eq!(again.full(), full, "{text:?}");
        assert_eq!(
            Reference::parse(&r.familiar()).map(|f| f.full()).ok(),
            Some(full),
            "{text:?}: the familiar form names another reference"
        );
    }
});
