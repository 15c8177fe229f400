//! The Python side of set-up: a virtualenv in `.venv` with the real client
//! SDKs from PyPI (pinned in tests/python/requirements.txt), and discovery of
//! the interpreters the integration tests run against.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::shell::{output, run, step, workspace_root};

/// Modules the venv must import for the tests and the demo.
const REQUIRED_MODULES: &str = "openai, anthropic, httpx, requests, aiohttp, trustme, brotli, zstandard, grpc, opentelemetry.proto, pytest, xdist, \
     fastapi, uvicorn, uvloop, flask, gunicorn, prometheus_client, helm_python, kubernetes_validate, yaml";

pub fn ensure_venv() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let requirements = root.join("tests/python/requirements.txt");
    let check = format!("import {REQUIRED_MODULES}");
    if output(Command::new(&python).args(["-c", &check])).is_some() {
        step("Python virtualenv with the client SDKs: present");
        return Ok(python);
    }
    if !python.exists() {
        let base = base_interpreter().context("no Python 3 interpreter found to create the virtualenv")?;
        step(&format!("creating the Python virtualenv with {}", base.display()));
        run(Command::new(&base).args(["-m", "venv"]).arg(&venv))?;
    }
    step("installing the Python client SDKs from PyPI");
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r"])
        .arg(&requirements))?;
    if output(Command::new(&python).args(["-c", &check])).is_none() {
        bail!("the virtualenv still cannot import {REQUIRED_MODULES}");
    }
    Ok(python)
}

/// pyenv's 3.12 when present (a modern interpreter the SDKs support), else
/// the `python3` on PATH.
fn base_interpreter() -> Option<PathBuf> {
    pyenv_version(12)
        .map(|dir| dir.join("bin/python3.12"))
        .filter(|p| p.exists())
        .or_else(|| output(Command::new("sh").args(["-c", "command -v python3"])).map(|p| PathBuf::from(p.trim())))
}

/// pyenv's newest CPython 3.`minor` (its prefix directory), by patch number.
pub fn pyenv_version(minor: u32) -> Option<PathBuf> {
    let prefix = format!("3.{minor}.");
    std::fs::read_dir(pyenv_root().join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let patch: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((patch, entry.path()))
        })
        .max()
        .map(|(_, path)| path)
}

/// The interpreters the integration tests cover, as `label=path` pairs
/// joined by `;`: pyenv's newest 3.8–3.13, Debian's `/usr/bin/python3.11`,
/// and Debian sid's 3.14 and 3.15 (paths inside the sid root file system).
pub fn test_interpreters() -> String {
    let mut found = Vec::new();
    for minor in 8..=13 {
        let path = pyenv_version(minor).map_or_else(
            || PathBuf::from(format!("(pyenv 3.{minor} not installed)")),
            |dir| dir.join(format!("bin/python3.{minor}")),
        );
        found.push(format!("pyenv 3.{minor}={}", path.display()));
    }
    found.push("debian 3.11=/usr/bin/python3.11".to_owned());
    // Inside the Debian sid root file system (`fixtures`): they need its C library.
    found.push("sid 3.14=/usr/bin/python3.14".to_owned());
    found.push("sid 3.15=/usr/bin/python3.15".to_owned());
    found.join(";")
}

fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".pyenv"))
}
