//! Attach: what pytrace puts in place on a process it traces — TLS probes
//! on its libraries ([`libraries`]), Python context and function probes
//! ([`context`]), and the sockets it had open before ([`seeding`]).

pub mod context;
pub mod libraries;
pub mod seeding;
