//! What places spans in traces: the requests the traced process serves and
//! the calls made for them (`serving`), and the traced Python function calls
//! (`--trace-function`) with the spans they become (`function`).

pub mod function;
pub mod serving;
