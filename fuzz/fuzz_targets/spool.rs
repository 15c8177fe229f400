//! The on-disk spool opened over any file: a damaged spool is set aside
//! (or refused with an error), and every batch a readable one gives back
//! is decoded or reported unreadable — never a panic.
#![no_main]

use prost::Message as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("pytrace-fuzz-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    std::fs::write(dir.join("spans.redb"), data).expect("write the spool file");
    let Ok(mut spool) = tracer::otlp::spool::Spool::open(&dir, 1 << 20) else { return };
    for _ in 0..64 {
        let Ok(Some(batch)) = spool.oldest() else { break };
        if let Some(bytes) = tracer::otlp::transport::gunzip(&batch.payload) {
            let _ = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&*bytes);
        }
        if spool.remove(batch.key).is_err() {
            break;
        }
    }
    let _ = spool.push(1, data);
});
