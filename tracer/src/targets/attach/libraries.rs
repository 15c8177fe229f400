//! TLS probes on a traced process's libraries: one [`attach_tls`] for every
//! moment pytrace looks — at attach, while a launched program starts, and
//! at a rescan — returning a [`TlsReport`] that [`TlsReport::announce`]
//! tells the user about.

use std::path::Path;

use crate::notices::{notice, warning};
use crate::probes::{ProbeError, Probes};
use crate::targets::inspect::TargetProcess;
use crate::targets::inspect::tls::{self, TlsLibrary, UnusableTls};
use crate::targets::launch;
use crate::targets::watch::Traced;

/// When pytrace looks at a process's libraries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// At attach: the libraries it maps, else the `libssl` its interpreter
    /// will load.
    First,
    /// A process that just started or exec'd: the libraries mapped so far
    /// and the `libssl` its interpreter will load, tried at every look
    /// while it starts.
    Starting,
    /// Later: only the libraries it loaded since (dlopen).
    Again,
}

/// What one look at a process's TLS libraries did.
#[derive(Debug, Default)]
pub struct TlsReport {
    /// Libraries newly put under probes, described for the user.
    pub attached: Vec<String>,
    /// Mapped libraries under probes now, new or from before (another
    /// process of the same file).
    pub mapped_probed: usize,
    /// Libraries whose probes the kernel refused.
    pub refused: Vec<(String, ProbeError)>,
    /// Some of the refused ones are mapped (not predicted).
    pub mapped_refused: bool,
    /// Objects holding a TLS stack that cannot be probed.
    pub unusable: Vec<(String, UnusableTls)>,
    /// The `libssl` not loaded yet on which probes wait.
    pub predicted: Option<String>,
    /// `Look::First` found nothing to probe: why, in one line.
    pub nothing_usable: Option<String>,
}

/// Puts the TLS libraries `traced` maps that were not examined before
/// under probes — and, as `look` says, the `libssl` its interpreter will
/// load. A library whose probes fail is forgotten, so the next look tries
/// it again.
pub fn attach_tls(probes: &mut Probes, traced: &mut Traced, look: Look) -> TlsReport {
    let pid = traced.process.pid;
    let search = tls::find_mapped(&traced.process, &mut traced.known_files);
    let mut report = TlsReport { unusable: search.unusable.clone(), ..TlsReport::default() };
    for library in &search.libraries {
        if attach_one(probes, pid, library, &mut report) {
            report.mapped_probed += 1;
        } else {
            traced.known_files.remove(&library.id);
        }
    }
    report.mapped_refused = !report.refused.is_empty();
    let predict = match look {
        Look::First => report.mapped_probed == 0 && !report.mapped_refused,
        Look::Starting => true,
        Look::Again => false,
    };
    if !predict {
        return report;
    }
    if let Some(library) = predicted_libssl(&traced.process)
        && traced.known_files.insert(library.id)
    {
        if attach_one(probes, pid, &library, &mut report) {
            report.predicted = Some(library.path.clone());
        } else {
            // A process caught mid-exec may refuse the first try: tried again at the next look.
            traced.known_files.remove(&library.id);
        }
    }
    if look == Look::First && report.predicted.is_none() {
        report.nothing_usable = Some(search.explain());
    }
    report
}

/// `pytrace run`: probes on the `libssl` the command's interpreter will
/// load, before the command runs.
pub fn attach_predicted(probes: &mut Probes, pid: u32, target: &TargetProcess) -> TlsReport {
    let mut report = TlsReport::default();
    if let Some(library) = tls::predict_libssl(target)
        && attach_one(probes, pid, &library, &mut report)
    {
        report.predicted = Some(library.path.clone());
    }
    report
}

/// The `libssl` a process's interpreter will load, when it can be told.
fn predicted_libssl(process: &TargetProcess) -> Option<TlsLibrary> {
    if process.python.is_some() {
        // Resolved inside the process's own root directory.
        tls::predict_libssl(process)
    } else if process.sees_files_as_pytrace() {
        // Its interpreter is not mapped yet: judged by its executable, which
        // only names the same file here when the process shares pytrace's view.
        launch::python_runtime(Path::new(&process.executable))
            .and_then(|python| tls::predict_libssl(&launch::prediction_target(python)))
    } else {
        None
    }
}

/// Probes on one library; whether they are in place (now or from before).
fn attach_one(probes: &mut Probes, pid: u32, library: &TlsLibrary, report: &mut TlsReport) -> bool {
    match probes.attach_library(pid, library) {
        Ok(fresh) => {
            if fresh {
                report.attached.push(describe(library));
            }
            true
        }
        Err(error) => {
            report.refused.push((library.path.clone(), error));
            false
        }
    }
}

/// `path [SSL_write SSL_read …; … through the internal functions they share]`.
fn describe(library: &TlsLibrary) -> String {
    let symbols: Vec<&str> = library.symbols.iter().map(|(s, _)| *s).collect();
    let covered = match library.covered_by_callee.as_slice() {
        [] => String::new(),
        names => format!("; {} through the internal functions they share", names.join(" ")),
    };
    format!("{} [{}{covered}]", library.path, symbols.join(" "))
}

impl TlsReport {
    /// At attach, a library maps yet no probe went on it: tracing would
    /// see nothing. The first refusal, to fail the attach with.
    pub fn blocking_refusal(self) -> Option<(String, ProbeError)> {
        self.is_blocked().then(|| self.refused.into_iter().next()).flatten()
    }

    fn is_blocked(&self) -> bool {
        self.mapped_probed == 0 && self.mapped_refused
    }

    /// Tells the user what the look did.
    pub fn announce(&self, pid: u32, look: Look) {
        for attached in &self.attached {
            notice!("PID {pid}: probes on {attached}");
        }
        // A refusal that blocks the attach is the caller's error, said once.
        let blocked = look == Look::First && self.is_blocked();
        for (_, error) in self.refused.iter().filter(|_| !blocked) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map(|p| p.display().to_string());
            warning!("PID {pid} ({}): {error}", exe.unwrap_or_default());
        }
        match look {
            Look::First => self.announce_first(pid),
            Look::Again => {
                for (path, why) in &self.unusable {
                    notice!("PID {pid} loaded {path}; HTTPS through it is not visible: {why}");
                }
            }
            Look::Starting => {}
        }
    }

    fn announce_first(&self, pid: u32) {
        if self.mapped_probed > 0 {
            for (path, why) in &self.unusable {
                tracing::info!("PID {pid}: HTTPS through {path} is not visible: {why}");
            }
        } else if let Some(library) = &self.predicted {
            notice!("PID {pid} has not loaded ssl yet; probes are in place on {library} for when it does");
            for (path, why) in &self.unusable {
                warning!("PID {pid}: HTTPS through {path} is not visible: {why}");
            }
        } else if let Some(why) = &self.nothing_usable {
            warning!(
                "PID {pid} maps no OpenSSL pytrace can probe ({why}); tracing plaintext HTTP, and watching for one to load"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> (String, ProbeError) {
        ("/usr/lib/libssl.so.3".to_owned(), ProbeError::MissingMap("EVENTS"))
    }

    #[test]
    fn a_mapped_library_refused_with_nothing_probed_blocks_the_attach() {
        let report = TlsReport { refused: vec![refusal()], mapped_refused: true, ..TlsReport::default() };
        assert_eq!(report.blocking_refusal().map(|(library, _)| library).as_deref(), Some("/usr/lib/libssl.so.3"));
    }

    #[test]
    fn a_refusal_beside_a_probed_library_or_of_a_prediction_does_not() {
        let beside =
            TlsReport { refused: vec![refusal()], mapped_refused: true, mapped_probed: 1, ..TlsReport::default() };
        assert!(beside.blocking_refusal().is_none());
        let predicted = TlsReport { refused: vec![refusal()], ..TlsReport::default() };
        assert!(predicted.blocking_refusal().is_none());
    }

    #[test]
    fn a_library_is_described_with_the_functions_probed_and_those_covered() {
        let library = TlsLibrary {
            path: "/usr/lib/libssl.so.3".into(),
            host_path: "/usr/lib/libssl.so.3".into(),
            id: (1, 2),
            symbols: vec![("SSL_write_ex", 0x10), ("SSL_read_ex", 0x20)],
            covered_by_callee: vec!["SSL_read", "SSL_write"],
            mapped: true,
        };
        assert_eq!(
            describe(&library),
            "/usr/lib/libssl.so.3 [SSL_write_ex SSL_read_ex; SSL_read SSL_write through the internal functions they share]"
        );
    }
}
