//! Token counting of any text with both encodings: linear work, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = pytrace_core::llm::bpe::Encoding::o200k().count(&text);
    let _ = pytrace_core::llm::bpe::Encoding::cl100k().count(&text);
});
