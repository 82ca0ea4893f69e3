//! The Go-template formatter (`--format`) on any template, rendered on a docker-like object:
//! an error or text, never a panic or a hang.
#![no_main]

use berth_format::format::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Template::parse(src) else {
        return;
    };
    let dot = serde_json::json!({
        "ID": "0123456789ab",
        "Names": ["/web", "/alias"],
        "Size": 1234567,
        "Labels": {"a": "b", "com.example": "x y"},
        "State": {"Running": true, "Pid": 42, "Health": null},
        "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        "Nested": [[1, 2], [], [{"k": "v"}]],
        "Float": 1.5e300,
        "Neg": -9223372036854775808i64,
    });
    let _ = t.render(&dot);
});
