//! The members of a JSON object seen only in part: a request body whose
//! middle was never captured (a prompt larger than the capture limit) still
//! shows its first members whole in its head and its last members whole in
//! its tail. The openai SDK writes `messages` first and `model`, `stream`,
//! `max_tokens` and `tools` after it; the anthropic SDK writes `max_tokens`
//! before `messages` and `model` after. Pure and bounded: each byte is
//! scanned at most twice (once to find a member, once to parse it).
//!
//! The head is read forwards from its `{`. The tail is read backwards from
//! its final `}`: outside strings, a `"` met going backwards closes a string,
//! and the string opens at the nearest earlier `"` preceded by an even run of
//! backslashes — so the scan never needs to know where the tail began. A
//! member is taken only when it lies wholly inside the fragment and parses;
//! the first member that does not ends the scan.

use serde_json::{Map, Value};

/// An object of the top-level members found whole in `head` (the body's
/// first bytes) and in `tail` (its last bytes); `None` when neither holds one.
pub fn partial_object(head: &[u8], tail: &[u8]) -> Option<Value> {
    let mut object = Map::new();
    for (key, value) in head_members(head).into_iter().chain(tail_members(tail)) {
        object.entry(key).or_insert(value);
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// Members whole in the first bytes of an object, in order.
pub fn head_members(head: &[u8]) -> Vec<(String, Value)> {
    let mut members = Vec::new();
    let mut pos = skip_space(head, 0);
    if head.get(pos) != Some(&b'{') {
        return members;
    }
    pos += 1;
    loop {
        pos = skip_space(head, pos);
        let Some(key_end) = string_end(head, pos) else { break };
        let colon = skip_space(head, key_end);
        if head.get(colon) != Some(&b':') {
            break;
        }
        let value_start = skip_space(head, colon + 1);
        let Some(value_end) = value_end(head, value_start) else { break };
        let Some(member) = parse_member(&head[pos..key_end], &head[value_start..value_end]) else { break };
        members.push(member);
        pos = skip_space(head, value_end);
        if head.get(pos) != Some(&b',') {
            break;
        }
        pos += 1;
    }
    members
}

/// Members whole in the last bytes of an object, in order.
pub fn tail_members(tail: &[u8]) -> Vec<(String, Value)> {
    let mut members = Vec::new();
    let Some(mut end) = skip_space_back(tail, tail.len()) else { return members };
    if tail[end - 1] != b'}' {
        return members;
    }
    end -= 1;
    while let Some(value_end) = skip_space_back(tail, end) {
        let Some(value_start) = value_start(tail, value_end) else { break };
        let Some(colon) = skip_space_back(tail, value_start).filter(|&c| tail[c - 1] == b':') else { break };
        let Some(key_end) = skip_space_back(tail, colon - 1).filter(|&k| tail[k - 1] == b'"') else { break };
        let Some(key_start) = string_start(tail, key_end) else { break };
        let Some(member) = parse_member(&tail[key_start..key_end], &tail[value_start..value_end]) else { break };
        members.push(member);
        let Some(before) = skip_space_back(tail, key_start).filter(|&b| tail[b - 1] == b',') else { break };
        end = before - 1;
    }
    members.reverse();
    members
}

fn parse_member(key: &[u8], value: &[u8]) -> Option<(String, Value)> {
    Some((serde_json::from_slice(key).ok()?, serde_json::from_slice(value).ok()?))
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&b| is_space(b)) {
        pos += 1;
    }
    pos
}

/// The end (exclusive) of the non-space bytes before `end`; `None` at the start.
fn skip_space_back(bytes: &[u8], mut end: usize) -> Option<usize> {
    while end > 0 && is_space(bytes[end - 1]) {
        end -= 1;
    }
    (end > 0).then_some(end)
}

/// The end (exclusive) of the string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let mut pos = start + 1;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b'"' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match *bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut pos = start;
            while pos < bytes.len() {
                match bytes[pos] {
                    b'"' => {
                        pos = string_end(bytes, pos)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            None
        }
        _ => {
            let len = bytes[start..].iter().position(|&b| !is_scalar_byte(b))?;
            (len > 0).then_some(start + len)
        }
    }
}

fn is_scalar_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'+' | b'-')
}

/// The start of the string whose closing quote is `bytes[end - 1]`: the
/// nearest earlier quote not escaped, i.e. after an even run of backslashes.
fn string_start(bytes: &[u8], end: usize) -> Option<usize> {
    let mut pos = end - 1;
    while pos > 0 {
        pos -= 1;
        if bytes[pos] != b'"' {
            continue;
        }
        let backslashes = bytes[..pos].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes == pos {
            // The run reaches the fragment's start: its parity is unknown.
            return None;
        }
        if backslashes % 2 == 0 {
            return Some(pos);
        }
    }
    None
}

/// The start of the value ending (exclusive) at `end`.
fn value_start(bytes: &[u8], end: usize) -> Option<usize> {
    match bytes[end - 1] {
        b'"' => string_start(bytes, end),
        b'}' | b']' => {
            let mut depth = 0usize;
            let mut pos = end;
            while pos > 0 {
                match bytes[pos - 1] {
                    b'"' => {
                        pos = string_start(bytes, pos)?;
                        continue;
                    }
                    b'}' | b']' => depth += 1,
                    b'{' | b'[' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos - 1);
                        }
                    }
                    _ => {}
                }
                pos -= 1;
            }
            None
        }
        byte if is_scalar_byte(byte) => {
            let len = bytes[..end].iter().rev().position(|&b| !is_scalar_byte(b))?;
            Some(end - len)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Vec<u8> {
        let value = json!({
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "a \"quoted\" \\\\\" tricky } ] { [ prompt, \\\\"}],
            "model": "gpt-4o-mini",
            "stream": true,
            "temperature": 0.5e-1,
            "stop": null,
            "tools": [{"type": "function", "function": {"name": "f\"}", "parameters": {"a": [1, {"b": "]"}]}}}],
        });
        serde_json::to_vec_pretty(&value).unwrap()
    }

    #[test]
    fn members_before_and_after_a_hole_are_found() {
        let body = body();
        let text = String::from_utf8(body.clone()).unwrap();
        let hole_start = text.find("tricky").unwrap();
        let hole_end = text.find("prompt").unwrap();
        let object = partial_object(&body[..hole_start], &body[hole_end..]).unwrap();
        let mut keys: Vec<&str> = object.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["max_tokens", "model", "stop", "stream", "temperature", "tools"]);
        assert_eq!(object["model"], "gpt-4o-mini");
        assert_eq!(object["tools"][0]["function"]["name"], "f\"}");
        assert_eq!(object["temperature"], 0.05);
    }

    #[test]
    fn every_cut_yields_only_true_members() {
        let body = body();
        let whole: Value = serde_json::from_slice(&body).unwrap();
        for cut in 0..=body.len() {
            for (key, value) in head_members(&body[..cut]).into_iter().chain(tail_members(&body[cut..])) {
                assert_eq!(whole[&key], value, "cut at {cut}: {key}");
            }
        }
        assert_eq!(tail_members(&body).len(), 7, "an uncut object is read whole backwards");
        assert_eq!(head_members(&body).len(), 7);
    }

    #[test]
    fn compact_bodies_and_garbage() {
        let compact = br#"{"messages":[{"content":"x\\"}],"model":"m","stream":false}"#;
        assert_eq!(tail_members(&compact[20..]), vec![("model".into(), json!("m")), ("stream".into(), json!(false))]);
        assert_eq!(head_members(&compact[..30]), vec![]);
        for garbage in [&b""[..], b"}", b"\"}", b"\\\"}", b"{", b":1}", b"\"a\":}", b"[1]", b"\"\\\\\":1}"] {
            let _ = (head_members(garbage), tail_members(garbage));
        }
        assert_eq!(partial_object(b"not json", b"either"), None);
    }
}
