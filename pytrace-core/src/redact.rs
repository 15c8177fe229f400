//! Secret redaction. API keys and credentials must never leave the host in
//! any output, so every string that may carry one passes through here:
//! URLs (userinfo, credential query parameters, path segments shaped like
//! tokens — provider keys, Slack, GitHub, GitLab and AWS tokens, Telegram
//! bot tokens, webhook secrets), header values, and command lines (the
//! traced process's, and `pytrace run`'s command in every report).

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
    "refresh_token",
    "id_token",
    "private_token",
    "token",
    "client_secret",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "code",
    "sig",
    "signature",
    "x-goog-signature",
    "x-goog-credential",
    "awsaccesskeyid",
];

/// Query parameters with these prefixes are credentials too (AWS SigV4
/// presigned URLs: `X-Amz-Signature`, `X-Amz-Credential`, …).
const SECRET_QUERY_PREFIXES: &[&str] = &["x-amz-"];

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
    let mut out = redact_path_tokens(&redact_userinfo(path));
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
    let name = percent_decode_lossy(name).to_ascii_lowercase();
    SECRET_QUERY_PARAMS.iter().any(|p| *p == name) || SECRET_QUERY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Path segments that are tokens: shaped like a key ([`looks_like_key`]), a
/// Telegram bot token (`bot123456:ABC…`), or the secret parts of Slack
/// (`/services/T…/B…/<secret>`) and Discord (`/webhooks/<id>/<secret>`)
/// webhook paths.
fn redact_path_tokens(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let after = |i: usize, name: &str, gap: usize| i >= gap && segments[i - gap].eq_ignore_ascii_case(name);
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let bot_token = segment.strip_prefix("bot").and_then(|t| t.split_once(':')).is_some_and(|(id, secret)| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && secret.len() >= 20
            });
            let webhook_secret = after(i, "services", 3) || (after(i, "webhooks", 2) && segment.len() >= 20);
            if looks_like_key(segment) || bot_token || webhook_secret { REDACTED } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes `%XX` escapes; invalid escapes and bytes are kept as they are.
pub fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2))
        {
            out.push((high * 16 + low) as u8);
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

/// A URL to show to people: no userinfo, no query, no fragment (an
/// endpoint's credentials sit there).
pub fn endpoint_for_display(url: &str) -> String {
    let without = url.split(['?', '#']).next().unwrap_or_default();
    redact_userinfo(without)
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
            out.push(redact_urls_in(arg));
        }
    }
    out
}

/// Redacts every `http://`/`https://` URL inside a longer text (a script
/// passed with `-c`, say) as [`redact_url`] does.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("http://").into_iter().chain(rest.find("https://")).min() {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end =
            url.find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')).unwrap_or(url.len());
        // Punctuation that ends a sentence is not part of the URL.
        let end = url[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']).len();
        out.push_str(&redact_url(&url[..end]));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// Redacts secrets in free text from the network (a provider's error
/// message, which may quote the caller's key): URLs as [`redact_url`] does,
/// words shaped like keys (masked ones, `sk-proj-****abcd`, included), and
/// the word after `Bearer`.
pub fn redact_text(text: &str) -> String {
    let text = redact_urls_in(text);
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.' | '~' | '+' | '/' | '=');
    let mut out = String::with_capacity(text.len());
    let mut after_bearer = false;
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let word_len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        if word_len == 0 {
            let separator = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..separator]);
            rest = &rest[separator..];
            continue;
        }
        let word = &rest[..word_len];
        let core = word.trim_end_matches(['.', '/', '=']);
        if after_bearer || looks_like_key(core) {
            out.push_str(REDACTED);
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer");
        rest = &rest[word_len..];
    }
    out
}

/// API keys and tokens with recognisable prefixes: providers' (OpenAI,
/// Anthropic, Google, xAI, Groq, Hugging Face, Langfuse), Slack's, GitHub's,
/// GitLab's and AWS access key ids.
fn looks_like_key(arg: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "AIza",
        "xai-",
        "gsk_",
        "hf_",
        "pk-lf-",
        "sk-lf-",
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxr-",
        "xoxs-",
        "xapp-",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "AKIA",
        "ASIA",
    ];
    arg.len() >= 16 && !arg.contains(char::is_whitespace) && PREFIXES.iter().any(|p| arg.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_quoted_in_free_text() {
        assert_eq!(
            redact_text(
                "Incorrect API key provided: sk-proj-****************abcd. Find your key at https://x.io/k?api_key=s3cr3t."
            ),
            "Incorrect API key provided: REDACTED. Find your key at https://x.io/k?api_key=REDACTED."
        );
        assert_eq!(redact_text("got Bearer abc.def-ghi, expected none"), "got Bearer REDACTED, expected none");
        assert_eq!(redact_text("token ghp_0123456789abcdefghij0123 revoked"), "token REDACTED revoked");
        let plain = "This model's maximum context length is 128000 tokens (sk- is a prefix). Ünïcode…";
        assert_eq!(redact_text(plain), plain);
    }

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
    fn redacts_credential_parameters_and_token_shaped_path_segments() {
        for name in ["client_secret", "password", "passwd", "refresh_token", "private_token", "id_token", "X-Amz-Date2"]
        {
            let url = format!("https://h/x?a=1&{name}=s3cr3t");
            assert_eq!(redact_url(&url), format!("https://h/x?a=1&{name}=REDACTED"), "{name}");
        }
        assert_eq!(
            redact_url("https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"),
            "https://api.telegram.org/REDACTED/sendMessage"
        );
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"),
            "https://hooks.slack.com/services/T000/B000/REDACTED"
        );
        assert_eq!(
            redact_url("https://discord.com/api/webhooks/1234567/abcdefghijklmnopqrstuvwxyz0123"),
            "https://discord.com/api/webhooks/1234567/REDACTED"
        );
        assert_eq!(redact_url("/v1/keys/sk-proj-abcdefghijklmnopqrst/usage"), "/v1/keys/REDACTED/usage");
        assert_eq!(redact_url("/repos/ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "/repos/REDACTED");
        assert_eq!(redact_url("/v1/chat/completions"), "/v1/chat/completions", "ordinary paths stay");
        assert_eq!(redact_url("/bot/help"), "/bot/help");
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
    fn urls_inside_arguments_are_redacted() {
        let script = "urlopen('https://h/x?password=hunter2&q=1'); get(\"http://u:p@h/y\")";
        assert_eq!(
            redact_urls_in(script),
            "urlopen('https://h/x?password=REDACTED&q=1'); get(\"http://REDACTED:REDACTED@h/y\")"
        );
        let args = vec!["python".to_owned(), "-c".to_owned(), script.to_owned()];
        assert!(!redact_command_args(&args).concat().contains("hunter2"));
    }

    #[test]
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(
            endpoint_for_display("https://user:pw@collector:4318/v1/traces?token=abc#x"),
            "https://REDACTED:REDACTED@collector:4318/v1/traces"
        );
        assert_eq!(endpoint_for_display("http://collector:4317"), "http://collector:4317");
    }

    #[test]
    fn knows_secret_headers() {
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("X-Goog-Api-Key"));
        assert!(!is_secret_header("content-type"));
    }
}
