//! `pytrace node`: trace every Python process on this host — those running
//! when it starts and those that start later, in any mount or PID namespace
//! — until a signal or `--duration`.

use crate::agent::{self, SessionError, TargetSource};
use crate::cli::TraceConfig;
use crate::kubernetes::KubernetesOptions;
use crate::targets::select::rules::Selection;

pub async fn run(config: TraceConfig, selection: Selection, kubernetes: KubernetesOptions) -> Result<(), SessionError> {
    agent::trace(config, TargetSource::Host(selection, kubernetes)).await.map(drop)
}
