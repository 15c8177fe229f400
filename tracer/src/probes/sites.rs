//! Where probes go, in the form the kernel programs attach to: the TLS
//! functions of a library and the interpreter's call sites, as file
//! offsets. Inspecting a target (`targets::inspect`) finds them; `probes`
//! attaches to them.

use std::path::PathBuf;

/// A file's identity, whatever path reaches it.
pub type FileId = (u64, u64);

/// OpenSSL's functions pytrace probes ([`super::TLS_PROBES`] says with
/// which programs): where each is, in a library, is what inspecting it finds.
pub const TLS_FUNCTIONS: &[&str] = &["SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_free", "SSL_ctrl"];

/// An object exporting OpenSSL's read/write functions.
#[derive(Clone, Debug)]
pub struct TlsLibrary {
    /// Path inside the target's mount namespace (for messages).
    pub path: String,
    /// Path pytrace opens and attaches to.
    pub host_path: PathBuf,
    pub id: FileId,
    /// Where each probed function ([`TLS_FUNCTIONS`]) it defines is
    /// probed: its entry's file offset, or its cheaper callee's (see
    /// `probe_shared_callees`).
    pub symbols: Vec<(&'static str, u64)>,
    /// Functions not probed themselves because they call a probed callee.
    pub covered_by_callee: Vec<&'static str>,
    /// Mapped already (false: predicted from the `_ssl` module's dependencies).
    pub mapped: bool,
}

/// Probe sites as file offsets in the interpreter object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallProbes {
    /// 3.8–3.10: `_PyEval_EvalFrameDefault`, whose frame argument is the
    /// first on 3.8 and the second since 3.9.
    EvalFrame { offset: u64, frame_is_first_argument: bool },
    /// 3.11+: the `RESUME` handlers, and where calls end.
    Resume { handlers: Vec<u64>, end: CallEnds },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEnds {
    /// The function that clears a finished frame, on return and on exception.
    FrameClear(u64),
    /// The handlers of the return instructions (builds without symbols).
    ReturnHandlers(Vec<u64>),
}
