//! Members of a JSON object read from its head and tail around a hole: never
//! a panic for any bytes, and for a valid object (without repeated keys)
//! every member found is one of the object's, with its value.
#![no_main]

use pytrace_core::llm::fragments::{head_members, tail_members};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], body)) = data.split_first_chunk::<2>().map(|(cuts, body)| (cuts, body)) else { return };
    let first = usize::from(a) * body.len() / 256;
    let second = (first + usize::from(b) * body.len() / 256).min(body.len());
    let (head, tail) = (&body[..first], &body[second..]);
    let found: Vec<_> = head_members(head).into_iter().chain(tail_members(tail)).collect();
    let Ok(serde_json::Value::Object(whole)) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    if head_members(body).len() != whole.len() {
        return; // repeated keys: serde keeps the last of them
    }
    for (key, value) in found {
        assert_eq!(whole.get(&key), Some(&value), "member {key}");
    }
});
