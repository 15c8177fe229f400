//! Recognising an LLM API call from the wire — host, path and body shape,
//! never the client library — and naming its provider.

use serde_json::Value;

/// The wire format an exchange speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    OpenAiChat,
    OpenAiResponses,
    OpenAiEmbeddings,
    OpenAiCompletions,
    AnthropicMessages,
    /// `generateContent` (false) or `streamGenerateContent` (true).
    Gemini {
        stream: bool,
    },
    OllamaChat,
    OllamaGenerate,
    OllamaEmbed,
    /// `invoke` (false) or `converse` (true).
    Bedrock {
        converse: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    pub api: Api,
    pub provider: &'static str,
    /// The model named in the path (Gemini, Bedrock, Azure deployments).
    pub path_model: Option<String>,
}

/// Recognises a POST to an LLM API. `body` is the parsed request body, when
/// it was captured whole and is JSON.
pub fn detect(method: &str, host: &str, target: &str, body: Option<&Value>) -> Option<Detected> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    let host = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let has = |key: &str| body.is_some_and(|b| b.get(key).is_some());
    let body_is_unknown_or = |key: &str| body.is_none() || has(key);

    if let Some((before, verb)) = path.rsplit_once(':')
        && (verb == "generateContent" || verb == "streamGenerateContent")
    {
        let model = before.rsplit('/').next().map(str::to_owned);
        let provider = if host.ends_with("aiplatform.googleapis.com") || before.contains("/publishers/") {
            "gcp.vertex_ai"
        } else {
            "gcp.gemini"
        };
        return Some(Detected {
            api: Api::Gemini { stream: verb == "streamGenerateContent" },
            provider,
            path_model: model,
        });
    }
    if let Some(rest) = path.split("/model/").nth(1)
        && (host.starts_with("bedrock-runtime") || path.starts_with("/model/"))
    {
        let (model, action) = rest.rsplit_once('/')?;
        let converse = match action {
            "converse" => true,
            "invoke" => false,
            _ => return None,
        };
        let model = crate::redact::percent_decode_lossy(model);
        return Some(Detected { api: Api::Bedrock { converse }, provider: "aws.bedrock", path_model: Some(model) });
    }
    let ollama = |api| Some(Detected { api, provider: "ollama", path_model: None });
    match path {
        "/api/chat" if body_is_unknown_or("messages") => return ollama(Api::OllamaChat),
        "/api/generate" if body_is_unknown_or("prompt") => return ollama(Api::OllamaGenerate),
        "/api/embed" | "/api/embeddings" => return ollama(Api::OllamaEmbed),
        _ => {}
    }
    let deployment = path.split("/openai/deployments/").nth(1).and_then(|d| d.split('/').next()).map(str::to_owned);
    let provider = openai_compatible_provider(&host, deployment.is_some());
    let openai = |api| Some(Detected { api, provider, path_model: deployment.clone() });
    if path.ends_with("/chat/completions") && body_is_unknown_or("messages") {
        return openai(Api::OpenAiChat);
    }
    if path.ends_with("/responses") && body_is_unknown_or("input") {
        return openai(Api::OpenAiResponses);
    }
    if path.ends_with("/embeddings") && body_is_unknown_or("input") {
        return openai(Api::OpenAiEmbeddings);
    }
    if path.ends_with("/completions") && body_is_unknown_or("prompt") {
        return openai(Api::OpenAiCompletions);
    }
    if path.ends_with("/v1/messages") && body_is_unknown_or("messages") {
        let provider = if host.ends_with("anthropic.com") || !host.contains('.') || host == "localhost" {
            "anthropic"
        } else {
            provider_for_host(&host).unwrap_or("anthropic")
        };
        return Some(Detected { api: Api::AnthropicMessages, provider, path_model: None });
    }
    None
}

/// OpenAI-shaped APIs are served by many providers; the host names them.
/// Unknown hosts (vLLM, llama.cpp server, LiteLLM proxy) report `openai`,
/// the API they speak.
fn openai_compatible_provider(host: &str, azure_deployment: bool) -> &'static str {
    if azure_deployment || host.ends_with(".openai.azure.com") || host.ends_with(".services.ai.azure.com") {
        return "azure.ai.openai";
    }
    provider_for_host(host).unwrap_or("openai")
}

fn provider_for_host(host: &str) -> Option<&'static str> {
    const HOSTS: &[(&str, &str)] = &[
        ("api.openai.com", "openai"),
        ("api.anthropic.com", "anthropic"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("openrouter.ai", "openrouter"),
        ("api.together.xyz", "together_ai"),
        ("api.together.ai", "together_ai"),
        ("api.x.ai", "x_ai"),
        ("api.perplexity.ai", "perplexity"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
    ];
    let is_or_under = |h: &str| host.strip_suffix(h).is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
    HOSTS.iter().find(|(h, _)| is_or_under(h)).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api(host: &str, target: &str, body: Value) -> Option<(Api, &'static str, Option<String>)> {
        detect("POST", host, target, Some(&body)).map(|d| (d.api, d.provider, d.path_model))
    }

    #[test]
    fn recognises_each_api_by_path_and_shape() {
        let chat = json!({"model": "gpt-4o", "messages": []});
        assert_eq!(
            api("api.openai.com", "/v1/chat/completions", chat.clone()),
            Some((Api::OpenAiChat, "openai", None))
        );
        assert_eq!(
            api("localhost:8000", "/v1/chat/completions", chat.clone()),
            Some((Api::OpenAiChat, "openai", None))
        );
        assert_eq!(api("api.groq.com", "/openai/v1/chat/completions", chat.clone()).map(|d| d.1), Some("groq"));
        assert_eq!(
            api("res.openai.azure.com", "/openai/v1/chat/completions", chat.clone()).map(|d| d.1),
            Some("azure.ai.openai")
        );
        assert_eq!(
            api(
                "x.openai.azure.com",
                "/openai/deployments/my-4o/chat/completions?api-version=2024-10-21",
                chat.clone()
            ),
            Some((Api::OpenAiChat, "azure.ai.openai", Some("my-4o".into())))
        );
        assert_eq!(
            api("api.openai.com", "/v1/responses", json!({"input": "hi"})).map(|d| d.0),
            Some(Api::OpenAiResponses)
        );
        assert_eq!(
            api("api.openai.com", "/v1/embeddings", json!({"input": "hi"})).map(|d| d.0),
            Some(Api::OpenAiEmbeddings)
        );
        assert_eq!(
            api("api.openai.com", "/v1/completions", json!({"prompt": "hi"})).map(|d| d.0),
            Some(Api::OpenAiCompletions)
        );
        assert_eq!(
            api("api.anthropic.com", "/v1/messages", json!({"messages": []})),
            Some((Api::AnthropicMessages, "anthropic", None))
        );
        assert_eq!(
            api(
                "generativelanguage.googleapis.com",
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                json!({})
            ),
            Some((Api::Gemini { stream: true }, "gcp.gemini", Some("gemini-2.5-flash".into())))
        );
        assert_eq!(
            api(
                "us-central1-aiplatform.googleapis.com",
                "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
                json!({})
            ),
            Some((Api::Gemini { stream: false }, "gcp.vertex_ai", Some("gemini-2.0-flash".into())))
        );
        assert_eq!(
            api("localhost:11434", "/api/chat", json!({"messages": []})),
            Some((Api::OllamaChat, "ollama", None))
        );
        assert_eq!(
            api("localhost:11434", "/api/generate", json!({"prompt": "x"})).map(|d| d.0),
            Some(Api::OllamaGenerate)
        );
        assert_eq!(
            api(
                "bedrock-runtime.us-east-1.amazonaws.com",
                "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
                json!({})
            ),
            Some((
                Api::Bedrock { converse: false },
                "aws.bedrock",
                Some("anthropic.claude-3-haiku-20240307-v1:0".into())
            ))
        );
        assert_eq!(api("api.mistral.ai", "/v1/chat/completions", chat.clone()).map(|d| d.1), Some("mistral_ai"));
        assert_eq!(api("api.deepseek.com", "/chat/completions", chat).map(|d| d.1), Some("deepseek"));
    }

    #[test]
    fn ignores_other_traffic() {
        assert_eq!(detect("GET", "api.openai.com", "/v1/models", None), None);
        assert_eq!(api("example.com", "/v1/chat/completions", json!({"not": "chat"})), None);
        assert_eq!(api("example.com", "/api/users", json!({})), None);
        assert_eq!(detect("GET", "api.openai.com", "/v1/chat/completions", None), None);
    }
}
