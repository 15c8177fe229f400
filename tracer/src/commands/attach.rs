//! `pytrace attach`: trace running processes until they exit, a signal
//! arrives, or `--duration` passes.

use crate::cli::AttachConfig;
use crate::session::{self, SessionError, TargetSource};

pub async fn run(config: AttachConfig) -> Result<(), SessionError> {
    let source = TargetSource::Pids(config.pids.clone());
    session::trace(config, source).await.map(drop)
}
