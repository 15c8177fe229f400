//! `cargo xtask test`: every test. Unit and replay tests first (no root
//! needed; the repository's guards among them), clippy with warnings as
//! errors, then the root integration tests, which trace real Python clients
//! with the release binary (and run it in both container images: the binary
//! copied in, and compiled by deploy/Dockerfile's build stage), then the
//! benchmarks in quick mode (they must run through; their timings are not
//! asserted) and each fuzz target briefly.

use crate::shell::{self, step, workspace_root};
use crate::{fixtures, python, setup};

/// Seconds each fuzz target runs in `cargo xtask test` (`cargo xtask fuzz` runs longer).
const FUZZ_SECONDS: u32 = 20;

/// Clippy over every crate but the kernel programs' (built for the BPF
/// target only), warnings as errors: the workspace lints hold unsafe blocks
/// to a `SAFETY:` comment and functions to 80 lines, among others.
fn lint(toolchain: &setup::Toolchain, counts: &mut shell::TestCounts) -> anyhow::Result<()> {
    step("clippy: every crate, warnings are errors");
    let result = shell::run(
        toolchain
            .cargo()
            .args(["clippy", "--workspace", "--exclude", "tracer-ebpf", "--all-targets", "--", "-D", "warnings"])
            .current_dir(workspace_root()),
    );
    match &result {
        Ok(()) => counts.passed += 1,
        Err(_) => counts.failed += 1,
    }
    result
}

pub fn run(filter: Option<&str>) -> anyhow::Result<()> {
    let env = setup::run()?;
    let root = workspace_root();

    let mut counts = shell::TestCounts::default();
    step("unit and replay tests");
    let unit = shell::run_tests(
        env.toolchain
            .cargo()
            .args(["test", "--workspace", "--exclude", "integration-tests", "--exclude", "tracer-ebpf"])
            .current_dir(&root),
        &mut counts,
    );
    let unit = unit.and_then(|()| lint(&env.toolchain, &mut counts));
    if let Err(error) = unit {
        println!("total: {} passed, {} failed", counts.passed, counts.failed.max(1));
        return Err(error);
    }

    shell::require_root("the integration tests")?;
    setup::ensure_chromium()?;
    let fixtures = fixtures::ensure()?;
    env.toolchain.build_release()?;
    let image = crate::image::build(&env.toolchain)?;
    let source_image = crate::image::source::build()?;
    step("integration tests (root): real Python clients traced by pytrace");
    let mut command = env.toolchain.cargo();
    command
        .args(["test", "--package", "integration-tests", "--"])
        .args(filter)
        .args(["--test-threads", "2"])
        .current_dir(&root)
        .env("PYTRACE_BIN", shell::pytrace_binary())
        .env("PYTRACE_PYTHON", &env.python)
        .env("PYTRACE_INTERPRETERS", python::test_interpreters())
        .env("PYTRACE_SID_ROOTFS", &fixtures.sid_rootfs)
        .env("PYTRACE_SID_IMAGE", &fixtures.sid_image)
        .env("CONTAINERS_CONF", &fixtures.containers_conf)
        .env("PYTRACE_KERNEL_MATRIX", &fixtures.kernel_matrix)
        .env("PYTRACE_IMAGE", &image)
        .env("PYTRACE_SOURCE_IMAGE", &source_image);
    let mut result = shell::run_tests(&mut command, &mut counts);
    if result.is_ok() && filter.is_none() {
        step("benchmarks, quick mode: every workload and configuration must run (timings not asserted)");
        result = crate::bench::run(true, &[], 0.0);
        match &result {
            Ok(()) => counts.passed += 1,
            Err(_) => counts.failed += 1,
        }
    }
    if result.is_ok() && filter.is_none() {
        step("fuzzing, briefly: every target from its seeds and corpus, no crash");
        result = crate::fuzz::run(&env, FUZZ_SECONDS, &[]);
        match &result {
            Ok(()) => counts.passed += 1,
            Err(_) => counts.failed += 1,
        }
    }
    let failed = if result.is_err() { counts.failed.max(1) } else { counts.failed };
    println!("total: {} passed, {failed} failed", counts.passed);
    result
}
