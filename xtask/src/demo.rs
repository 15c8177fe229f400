//! `cargo xtask demo`: the main job. Starts a local HTTPS server and an
//! ordinary Python program that calls it with requests, httpx and the openai
//! SDK; once the program is running, attaches `pytrace attach --pid` to it
//! and shows the spans live until the program exits.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::setup;
use crate::shell::{self, step, workspace_root};

/// Kills and reaps a child process when dropped, even on error paths.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(seconds: u32) -> anyhow::Result<()> {
    shell::require_root("the demo")?;
    let env = setup::run()?;
    env.toolchain.build_release()?;
    let root = workspace_root();
    let work = root.join("target/demo");
    std::fs::create_dir_all(&work)?;

    step("starting a local HTTPS server (tests/python/server.py)");
    let mut server = ChildGuard(
        Command::new(&env.python)
            .arg(root.join("tests/python/server.py"))
            .arg("--cert-dir")
            .arg(work.join("certs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the demo server")?,
    );
    let mut ready = String::new();
    BufReader::new(server.0.stdout.take().context("server stdout")?).read_line(&mut ready)?;
    let mut fields = ready.split_whitespace().skip(1);
    let (Some(port), Some(ca)) = (fields.next(), fields.next()) else {
        bail!("the demo server did not start: {ready:?}")
    };

    step(&format!("starting the Python program (tests/python/demo_app.py), running for {seconds}s"));
    let app = ChildGuard(
        Command::new(&env.python)
            .arg(root.join("tests/python/demo_app.py"))
            .args(["--base", &format!("https://localhost:{port}"), "--ca", ca, "--seconds", &seconds.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .context("starting the demo program")?,
    );
    let pid = app.0.id();
    std::thread::sleep(Duration::from_millis(1500));

    step(&format!("sudo pytrace attach --pid {pid}   (the program has been running for 1.5 s)"));
    shell::run(Command::new(shell::pytrace_binary()).args([
        "attach",
        "--pid",
        &pid.to_string(),
        "--format",
        "pretty",
    ]))?;
    drop(app);
    drop(server);
    step("demo finished");
    Ok(())
}
