//! `cargo xtask manifest`: renders the Helm chart (deploy/helm/pytrace)
//! with its default values into the plain manifest
//! deploy/kubernetes/pytrace.yaml, with Helm's own engine (the
//! helm-python-sdk package in the test virtualenv), so both install the
//! same objects; `tests/tests/helm.rs` checks they are still equal.

use std::process::Command;

use crate::setup;
use crate::shell::{self, step, workspace_root};

pub fn run() -> anyhow::Result<()> {
    let env = setup::run()?;
    let root = workspace_root();
    let manifest = root.join("deploy/kubernetes/pytrace.yaml");
    step(&format!("rendering deploy/helm/pytrace into {}", manifest.display()));
    shell::run(
        Command::new(&env.python)
            .arg(root.join("tests/python/render_chart.py"))
            .arg(root.join("deploy/helm/pytrace"))
            .arg("--write")
            .arg(&manifest)
            .stdout(std::process::Stdio::null()),
    )
}
