//! `cargo xtask cpython-offsets`: the offsets pytrace reads in CPython
//! 3.8–3.12, generated from each interpreter's own headers rather than typed
//! in: `offsets.c` is compiled (gcc, `Py_BUILD_CORE`) against pyenv's
//! `include/python3.X` — internal headers included — and run; it prints
//! `name value` lines. The command prints them per version; a test holds
//! `pytrace_core::python::layout::table` to them. (3.13 and later publish
//! their offsets in `_Py_DebugOffsets`, read from the live process.)

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::python::pyenv_version;
use crate::shell::{step, workspace_root};

/// The versions whose offsets pytrace keeps in a table.
pub const MINORS: std::ops::RangeInclusive<u32> = 8..=12;

const PROGRAM: &str = include_str!("offsets.c");

/// The newest pyenv CPython 3.`minor`'s include directory.
fn include_dir(minor: u32) -> anyhow::Result<PathBuf> {
    let prefix =
        pyenv_version(minor).with_context(|| format!("no pyenv CPython 3.{minor} (its headers give the offsets)"))?;
    Ok(prefix.join(format!("include/python3.{minor}")))
}

/// The offsets CPython 3.`minor`'s headers give, by name.
pub fn generate(minor: u32) -> anyhow::Result<BTreeMap<String, u64>> {
    let dir = workspace_root().join("target/cpython-offsets");
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("offsets.c");
    std::fs::write(&source, PROGRAM)?;
    let program = dir.join(format!("offsets-3.{minor}"));
    let compiled = Command::new("gcc")
        .arg("-I")
        .arg(include_dir(minor)?)
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .output()
        .context("running gcc")?;
    if !compiled.status.success() {
        bail!("compiling the offsets of 3.{minor}: {}", String::from_utf8_lossy(&compiled.stderr));
    }
    let output = Command::new(&program).output().context("running the offsets program")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').with_context(|| format!("unreadable line {line:?}"))?;
            Ok((name.to_owned(), value.parse()?))
        })
        .collect()
}

pub fn run() -> anyhow::Result<()> {
    for minor in MINORS {
        step(&format!("CPython 3.{minor}, from {}", include_dir(minor)?.display()));
        for (name, value) in generate(minor)? {
            println!("  {name:<24} {value}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `pytrace_core`'s table says, under the generator's names.
    fn committed(minor: u32) -> BTreeMap<String, u64> {
        let layout = pytrace_core::python::layout::table(minor).expect("a table for 3.8–3.12");
        let (k, c, o) = (&layout.kernel, &layout.code, &layout.objects);
        let mut table: BTreeMap<&str, u64> = BTreeMap::from([
            ("interpreters_head", layout.interpreters_head),
            ("threads_head", layout.threads_head),
            ("tstate_next", layout.tstate_next),
            ("tstate_interp", layout.tstate_interp),
            ("tstate_frame", u64::from(k.tstate_frame)),
            ("frame_back", u64::from(k.frame_back)),
            ("frame_code", u64::from(k.frame_code)),
            ("frame_instr", u64::from(k.frame_instr)),
            ("code_filename", c.filename),
            ("code_name", c.name),
            ("code_firstlineno", c.firstlineno),
            ("code_linetable", c.linetable),
            ("unicode_length", o.unicode_length),
            ("unicode_state", o.unicode_state),
            ("unicode_ascii_data", o.unicode_ascii_data),
            ("unicode_compact_data", o.unicode_compact_data),
            ("bytes_size", o.bytes_size),
            ("bytes_data", o.bytes_data),
        ]);
        if minor <= 10 {
            table.insert("frame_state", u64::from(k.frame_state));
        } else {
            table.insert("cframe_current", u64::from(k.cframe_current));
            table.insert("frame_owner", u64::from(k.frame_owner));
        }
        let optional = [
            ("tstate_native_thread_id", layout.tstate_native_thread_id),
            ("code_qualname", c.qualname),
            ("code_adaptive", c.code_adaptive),
        ];
        table.extend(optional.into_iter().filter_map(|(name, value)| Some((name, value?))));
        table.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
    }

    #[test]
    fn the_committed_tables_are_what_the_headers_say() {
        for minor in MINORS {
            assert_eq!(
                committed(minor),
                generate(minor).unwrap(),
                "CPython 3.{minor}: pytrace-core/src/python/layout.rs against `cargo xtask cpython-offsets`"
            );
        }
    }
}
