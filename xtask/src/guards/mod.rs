//! Checks over the repository's own text that keep it easy to change, run
//! with the unit tests (`cargo xtask test`, so `.ci/run`): every path the
//! documentation names exists ([`docs_paths`]).

#[cfg(test)]
mod docs_paths;
