//! Spans built from what was observed: an HTTP exchange's span (`http`),
//! made a GenAI span when it was an LLM call (`llm`), and the Python
//! function that made a call, on its span (`python`).

pub mod http;
pub mod llm;
pub mod python;
