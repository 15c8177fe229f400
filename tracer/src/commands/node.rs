//! `pytrace node`: trace every Python process on this host — those running
//! when it starts and those that start later, in any mount or PID namespace
//! — until a signal or `--duration`.

use crate::cli::AttachConfig;
use crate::discovery::selection::Selection;
use crate::kubernetes::KubernetesOptions;
use crate::session::{self, SessionError, TargetSource};

pub async fn run(
    config: AttachConfig,
    selection: Selection,
    kubernetes: KubernetesOptions,
) -> Result<(), SessionError> {
    session::trace(config, TargetSource::Host(selection, kubernetes)).await.map(drop)
}
