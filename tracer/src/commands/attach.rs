//! `pytrace attach`: trace running processes until they exit, a signal
//! arrives, or `--duration` passes.

use crate::agent::{self, SessionError, TargetSource};
use crate::cli::AttachConfig;

pub async fn run(config: AttachConfig) -> Result<(), SessionError> {
    let source = TargetSource::Pids(config.pids.clone());
    agent::trace(config, source).await.map(drop)
}
