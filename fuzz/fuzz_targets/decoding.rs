//! Content decoding of any body under any stack of encodings: decoded or
//! refused, within the size bound, never a panic.
#![no_main]

const ENCODINGS: &[&str] = &["gzip", "deflate", "br", "zstd", "identity", "x-gzip", "compress"];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else { return };
    let encodings: Vec<String> =
        (0..choice % 4).map(|i| ENCODINGS[usize::from(choice >> (2 + i)) % ENCODINGS.len()].to_owned()).collect();
    if let Ok(decoded) = pytrace_core::http::encoding::decode(&encodings, body) {
        assert!(decoded.len() as u64 <= pytrace_core::http::encoding::MAX_DECODED.max(body.len() as u64));
    }
});
