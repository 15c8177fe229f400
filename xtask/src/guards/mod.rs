//! Checks over the repository's own text that keep it easy to change, run
//! with the unit tests (`cargo xtask test`, so `.ci/run`): every path the
//! documentation names exists ([`docs_paths`]); the engine, `pytrace-core`,
//! depends on no crate that reaches the system ([`core_dependencies`]); no
//! module depends on itself through others ([`module_graph`]); the agent's
//! system calls and `unsafe` stay in its `sys` module ([`system_calls`]);
//! the documented event ABI lists every event kind ([`event_abi`]).

#[cfg(test)]
mod core_dependencies;
#[cfg(test)]
mod docs_paths;
#[cfg(test)]
mod event_abi;
#[cfg(test)]
mod module_graph;
#[cfg(test)]
mod system_calls;
