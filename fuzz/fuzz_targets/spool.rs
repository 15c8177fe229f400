//! The on-disk spool opened over any files: what is not a batch is set
//! aside, every batch it gives back is decoded or reported unreadable, and
//! it keeps working — never a panic.
#![no_main]

use prost::Message as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("pytrace-fuzz-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    // The input is two files: a batch (or what passes for one) and another.
    let (first, second) = data.split_at(data.len() / 2);
    std::fs::write(dir.join("00000000000000000001.batch"), first).expect("write a batch file");
    std::fs::write(dir.join("00000000000000000002.batch"), second).expect("write a batch file");
    let Ok(mut spool) = tracer::sinks::otlp::spool::Spool::open(&dir, 1 << 20) else { return };
    while let Ok(Some(batch)) = spool.oldest() {
        if let Some(bytes) = tracer::sinks::otlp::transport::gunzip(&batch.payload) {
            let _ = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&*bytes);
        }
        if spool.remove(batch.key).is_err() {
            break;
        }
    }
    assert!(spool.is_empty());
    assert_eq!(spool.spans(), 0);
    let _ = spool.push(1, data);
});
