//! The builders that turn observed exchanges and calls into spans (of
//! `pytrace_core::model`), and the correlators that place them.

pub mod function;
pub mod http;
pub mod ids;
pub mod llm;
pub mod python;
pub mod serving;
