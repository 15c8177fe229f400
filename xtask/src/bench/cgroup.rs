//! A memory cgroup of its own for the process a benchmark measures: what the
//! kernel charges a pod for — the process's pages and the kernel memory it
//! causes (its BPF maps and ring buffer, page tables, socket buffers) —
//! as a Kubernetes memory request and limit count it. cgroup v2 where the
//! memory controller is there, else v1's memory hierarchy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

pub struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("memory"));
        let parent = if v2 { Path::new("/sys/fs/cgroup") } else { Path::new("/sys/fs/cgroup/memory") };
        let dir = parent.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating the memory cgroup {}", dir.display()))?;
        Ok(Self { dir, v2 })
    }

    /// `program` with `args`, placed in this cgroup before it runs (so that
    /// the maps it creates at start are charged here).
    pub fn command(&self, program: &Path, args: &[String]) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#).arg(&self.dir).arg(program).args(args);
        command
    }

    /// Memory charged now, in KiB.
    pub fn current_kib(&self) -> u64 {
        self.read(if self.v2 { "memory.current" } else { "memory.usage_in_bytes" })
    }

    /// The most ever charged, in KiB (0 where the kernel does not say: v2 before 5.19).
    pub fn peak_kib(&self) -> u64 {
        self.read(if self.v2 { "memory.peak" } else { "memory.max_usage_in_bytes" })
    }

    fn read(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file)).ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0) / 1024
    }
}

impl Drop for MemoryCgroup {
    /// Removed once its processes are gone (their charges move to the parent).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}
