//! A kernel program the kernel's verifier refused: which program, which
//! kernel, the last lines of the verifier's log, and where the whole log was
//! written — a bug in pytrace to report, not a setting to change.

use std::fmt;
use std::path::PathBuf;

/// Lines of the verifier's log shown with the rejection.
const EXCERPT_LINES: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub program: String,
    pub kernel: String,
    /// The verifier's reason: the last lines before its statistics.
    pub excerpt: Vec<String>,
    /// Where the whole log was written (None when it could not be).
    pub log_path: Option<PathBuf>,
}

impl Rejection {
    /// From the verifier's `log` of `program` on `kernel`; the log is
    /// written to a file in the temporary directory.
    pub fn new(program: &str, kernel: &str, log: &str) -> Self {
        let path = std::env::temp_dir().join(format!("pytrace-verifier-{kernel}-{program}.log"));
        let log_path = std::fs::write(&path, log).is_ok().then_some(path);
        Self { program: program.to_owned(), kernel: kernel.to_owned(), excerpt: excerpt(log), log_path }
    }
}

/// Whether `log` is the verifier's (as opposed to an empty log: a load the
/// kernel refused before verifying, such as one without CAP_BPF).
pub fn is_verifier_log(log: &str) -> bool {
    !log.trim().is_empty()
}

/// The verifier's reason: the last [`EXCERPT_LINES`] lines before its
/// closing statistics (`verification time`, `stack depth`, `processed`),
/// then the statistics' stack and instruction lines.
pub fn excerpt(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    let is_statistic =
        |line: &str| ["verification time", "stack depth", "processed "].iter().any(|s| line.starts_with(s));
    let reason_end = lines.iter().position(|l| is_statistic(l)).unwrap_or(lines.len());
    let mut excerpt: Vec<String> =
        lines[reason_end.saturating_sub(EXCERPT_LINES)..reason_end].iter().map(|l| (*l).to_owned()).collect();
    excerpt.extend(
        lines[reason_end..]
            .iter()
            .filter(|l| l.starts_with("stack depth") || l.starts_with("processed "))
            .map(|l| (*l).to_owned()),
    );
    excerpt
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this kernel's verifier (Linux {}) rejected pytrace's program {}", self.kernel, self.program)?;
        for line in &self.excerpt {
            write!(f, "\n    {line}")?;
        }
        match &self.log_path {
            Some(path) => write!(f, "\nthe whole log is in {}", path.display())?,
            None => write!(f, "\n(the whole log could not be written to {})", std::env::temp_dir().display())?,
        }
        write!(
            f,
            "\nthis is a bug in pytrace, not a setting to change: please report it with that log and the output of \
             `pytrace --version`"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of the log Linux 6.1 wrote for ssl_write before the fix.
    const LOG: &str = "reg type unsupported for arg#0 function ssl_write#81\n\
        0: R1=ctx(off=0,imm=0) R10=fp0\n\
        1246: (79) r1 = *(u64 *)(r10 -40)     ; frame4: R1_w=scalar()\n\
        1247: (0f) r2 += r1                   ; frame4: R1_w=scalar()\n\
        1248: (b7) r1 = 0                     ; frame4: R1_w=0 cb\n\
        1249: (71) r2 = *(u8 *)(r2 +0)\n\
        R2 unbounded memory access, make sure to bounds check any such access\n\
        verification time 46756 usec\n\
        stack depth 0+72+16+144+112+8+120+0+72\n\
        processed 1781 insns (limit 1000000) max_states_per_insn 3 total_states 84 peak_states 84 mark_read 34\n";

    #[test]
    fn shows_the_verifiers_reason_and_its_statistics() {
        let lines = excerpt(LOG);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[3], "R2 unbounded memory access, make sure to bounds check any such access");
        assert_eq!(lines[4], "stack depth 0+72+16+144+112+8+120+0+72");
        assert!(lines[5].starts_with("processed 1781 insns"));
        assert!(!lines.iter().any(|l| l.starts_with("verification time")));
    }

    #[test]
    fn names_program_kernel_and_log_and_asks_for_a_report() {
        let rejection = Rejection {
            program: "ssl_write".into(),
            kernel: "6.1.0-50-amd64".into(),
            excerpt: excerpt(LOG),
            log_path: Some("/tmp/x.log".into()),
        };
        let text = rejection.to_string();
        assert!(text.starts_with("this kernel's verifier (Linux 6.1.0-50-amd64) rejected pytrace's program ssl_write"));
        assert!(text.contains("R2 unbounded memory access"));
        assert!(text.contains("the whole log is in /tmp/x.log"));
        assert!(text.contains("please report it"));
        assert!(!text.contains("CAP_BPF"), "no capability advice for a verifier rejection");
        assert!(!is_verifier_log("  \n"));
    }

    #[test]
    fn writes_the_whole_log() {
        let rejection = Rejection::new("test_program", "0.0-test", LOG);
        let path = rejection.log_path.expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("readable"), LOG);
        let _ = std::fs::remove_file(path);
    }
}
