//! pytrace's root integration tests, as one test binary made of modules
//! (aya's shape: one link instead of one per file, one place listing
//! them): each module traces real Python clients, containers or
//! interpreters with the release binary (`PYTRACE_BIN`), through the
//! helpers of `integration_tests` (`tests/src/`). `cargo xtask test` runs
//! them as root with the fixtures they need; a filter selects by module
//! (`cargo xtask test otlp::`).

mod capture;
mod client_libraries;
mod containers;
mod doctor;
mod errors;
mod function_spans;
mod helm;
mod image;
mod interpreters;
mod kernels;
mod kubernetes;
mod llm;
mod map_limits;
mod nesting;
mod node;
mod otlp;
mod plaintext;
mod python_context;
mod replay;
mod run;
mod secrets;
mod static_openssl;
mod target_safety;
