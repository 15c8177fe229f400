//! `pytrace attach`: trace running processes until they exit, a signal
//! arrives, or `--duration` passes.

use crate::agent::{self, SessionError, TargetSource};
use crate::cli::TraceConfig;

pub async fn run(config: TraceConfig) -> Result<(), SessionError> {
    let source = TargetSource::Pids(config.pids.clone());
    agent::trace(config, source).await.map(drop)
}
