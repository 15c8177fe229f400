//! HTTP/1.x request and response heads: parsed with `httparse` from a byte
//! buffer that may hold only part of the head, plus the header look-ups the
//! rest of the pipeline needs (framing, Host, encodings).

/// Most headers a head may carry before it is rejected as hostile.
const MAX_HEADERS: usize = 128;

/// Header name/value pairs in wire order. Names keep their case; look-ups
/// ignore it. Values are raw bytes (HTTP allows non-UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    /// The first value of `name`, as text (lossy).
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_raw(name).map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }

    pub fn get_raw(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// All comma-separated tokens of every `name` header, lower-cased.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| {
                String::from_utf8_lossy(v).split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect()
    }

    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).iter().any(|t| t == token)
    }

    /// `Content-Length`, when present and well-formed (all copies equal).
    pub fn content_length(&self) -> Option<Result<u64, ()>> {
        let mut values = self.0.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        let first = values.next()?;
        let parse = |v: &[u8]| std::str::from_utf8(v).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let length = parse(&first.1);
        let consistent = values.all(|(_, v)| parse(v) == length);
        Some(length.filter(|_| consistent).ok_or(()))
    }

    /// Whether the message body uses chunked transfer coding (it is last).
    pub fn is_chunked(&self) -> bool {
        self.tokens("transfer-encoding").last().is_some_and(|t| t == "chunked")
    }

    fn from_httparse(headers: &[httparse::Header<'_>]) -> Self {
        Self(headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect())
    }
}

/// HTTP minor version: `1` for HTTP/1.1, `0` for HTTP/1.0.
pub type MinorVersion = u8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (origin-form `/path?q`, or absolute-form).
    pub target: String,
    pub version: MinorVersion,
    pub headers: Headers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub version: MinorVersion,
    pub headers: Headers,
}

/// Outcome of trying to parse a head from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The head, and how many bytes of the buffer it took.
    Complete(T, usize),
    /// More bytes are needed.
    Partial,
    /// Not HTTP/1.x, or malformed.
    Invalid,
}

pub fn parse_request(buf: &[u8]) -> Parsed<RequestHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Parsed::Complete(
            RequestHead {
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                version: req.version.unwrap_or(1),
                headers: Headers::from_httparse(req.headers),
            },
            len,
        ),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

pub fn parse_response(buf: &[u8]) -> Parsed<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Parsed::Complete(
            ResponseHead {
                status: resp.code.unwrap_or_default(),
                reason: resp.reason.unwrap_or_default().to_owned(),
                version: resp.version.unwrap_or(1),
                headers: Headers::from_httparse(resp.headers),
            },
            len,
        ),
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// Longest method token accepted when recognising a request start.
const MAX_METHOD_LEN: usize = 16;

/// Cheap test of whether `data` can begin an HTTP/1.x request: a method token
/// followed by a space, or a prefix of one (a call may carry just `G`). Used
/// to resynchronise after lost bytes.
pub fn looks_like_request_start(data: &[u8]) -> bool {
    let token_len = data.iter().take(MAX_METHOD_LEN).take_while(|b| b.is_ascii_uppercase()).count();
    token_len > 0 && matches!(data.get(token_len), Some(b' ') | None)
}

/// Cheap test of whether `data` can begin an HTTP/1.x response.
pub fn looks_like_response_start(data: &[u8]) -> bool {
    let prefix = &data[..data.len().min(7)];
    b"HTTP/1."[..prefix.len()] == *prefix && !prefix.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head_in_pieces() {
        let raw = b"POST /v1/x?a=1 HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(parse_request(&raw[..20]), Parsed::Partial);
        let Parsed::Complete(head, len) = parse_request(raw) else { panic!("complete") };
        assert_eq!(len, raw.len() - 3);
        assert_eq!((head.method.as_str(), head.target.as_str(), head.version), ("POST", "/v1/x?a=1", 1));
        assert_eq!(head.headers.get("host").as_deref(), Some("api.example.com"));
        assert_eq!(head.headers.content_length(), Some(Ok(3)));
    }

    #[test]
    fn rejects_conflicting_content_lengths_and_reads_chunked() {
        let headers = Headers(vec![
            ("Content-Length".into(), b"3".to_vec()),
            ("content-length".into(), b"4".to_vec()),
            ("Transfer-Encoding".into(), b"gzip, chunked".to_vec()),
        ]);
        assert_eq!(headers.content_length(), Some(Err(())));
        assert!(headers.is_chunked());
    }

    #[test]
    fn recognises_message_starts() {
        assert!(looks_like_request_start(b"GET / HTTP/1.1"));
        assert!(!looks_like_request_start(b"{\"json\": 1}"));
        assert!(looks_like_request_start(b"G"));
        assert!(!looks_like_request_start(b"GETX/"));
        assert!(looks_like_response_start(b"HTTP/1.1 200 OK"));
        assert!(looks_like_response_start(b"HTT"));
        assert!(!looks_like_response_start(b"data: x"));
        assert_eq!(parse_response(b"garbage\r\n\r\n"), Parsed::Invalid);
    }
}
