//! Secret redaction. API keys and credentials must never leave the host in
//! any output, so every string that may carry one passes through here:
//! URLs (userinfo, key-like query parameters), header values, and the traced
//! process's command line.

/// Headers whose values are credentials.
pub const SECRET_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"];

/// Query parameters whose values are credentials (compared case-insensitively).
const SECRET_QUERY_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "token",
    "sig",
    "signature",
    "x-goog-signature",
    "awsaccesskeyid",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

pub const REDACTED: &str = "REDACTED";

pub fn is_secret_header(name: &str) -> bool {
    SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Redacts credentials in a URL or request target: `user:pass@` userinfo and
/// the values of key-like query parameters.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((head, frag)) => (head, Some(frag)),
        None => (url, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(path);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = percent_decode_lossy(name);
    SECRET_QUERY_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&name))
}

/// Decodes `%XX` escapes; invalid escapes and bytes are kept as they are.
pub fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn redact_userinfo(path: &str) -> String {
    let Some(scheme_end) = path.find("://") else {
        return path.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = path[authority_start..].find('/').map_or(path.len(), |i| authority_start + i);
    match path[authority_start..authority_end].rfind('@') {
        Some(at) => format!("{}{REDACTED}:{REDACTED}@{}", &path[..authority_start], &path[authority_start + at + 1..]),
        None => path.to_owned(),
    }
}

/// Words that mark a command-line option or environment-style assignment as
/// holding a secret.
const SECRET_WORDS: &[&str] = &["key", "token", "secret", "password", "passwd", "credential", "auth"];

fn names_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Redacts secrets in a command line: values of `--api-key X`,
/// `--api-key=X`, `OPENAI_API_KEY=X`, and bare arguments that look like
/// provider keys (`sk-…`, `AIza…`).
pub fn redact_command_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut value_is_secret = false;
    for arg in args {
        if value_is_secret && !arg.starts_with('-') {
            out.push(REDACTED.to_owned());
            value_is_secret = false;
            continue;
        }
        value_is_secret = false;
        if let Some((name, _)) = arg.split_once('=')
            && names_secret(name)
        {
            out.push(format!("{name}={REDACTED}"));
        } else if arg.starts_with('-') && names_secret(arg) {
            value_is_secret = true;
            out.push(arg.clone());
        } else if looks_like_key(arg) {
            out.push(REDACTED.to_owned());
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// Provider API keys have recognisable prefixes.
fn looks_like_key(arg: &str) -> bool {
    const PREFIXES: &[&str] = &["sk-", "sk_", "AIza", "xai-", "gsk_", "hf_", "pk-lf-", "sk-lf-"];
    arg.len() >= 20 && !arg.contains(char::is_whitespace) && PREFIXES.iter().any(|p| arg.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_key_query_parameters_and_userinfo() {
        assert_eq!(
            redact_url("/v1beta/models/g:generateContent?alt=sse&key=AIzaSECRET&API_KEY=x#f"),
            "/v1beta/models/g:generateContent?alt=sse&key=REDACTED&API_KEY=REDACTED#f"
        );
        assert_eq!(redact_url("https://u:p@host/x?a=1"), "https://REDACTED:REDACTED@host/x?a=1");
        assert_eq!(redact_url("/a?%6Bey=s"), "/a?%6Bey=REDACTED");
        assert_eq!(redact_url("/plain"), "/plain");
    }

    #[test]
    fn redacts_secrets_on_command_lines() {
        let args: Vec<String> = [
            "python",
            "app.py",
            "--api-key",
            "abc",
            "--token=xyz",
            "OPENAI_API_KEY=sk-1",
            "sk-proj-aaaaaaaaaaaaaaaaaaaa",
            "--model",
            "gpt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_command_args(&args),
            [
                "python",
                "app.py",
                "--api-key",
                "REDACTED",
                "--token=REDACTED",
                "OPENAI_API_KEY=REDACTED",
                "REDACTED",
                "--model",
                "gpt"
            ]
        );
    }

    #[test]
    fn knows_secret_headers() {
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("X-Goog-Api-Key"));
        assert!(!is_secret_header("content-type"));
    }
}
