//! OpenSSL linked statically into a shared object, its symbols hidden from
//! the dynamic symbol table (`-Wl,--exclude-libs,ALL`) but kept in `.symtab`
//! — how python-build-standalone links OpenSSL into libpython. The fixture
//! (tests/fixtures/static_tls_client.c, built here against Debian's
//! `libssl.a`/`libcrypto.a`) is loaded by a Python program through ctypes:
//! its calls must be LLM spans naming the Python function, whether the
//! object was loaded before or after pytrace attached; a stripped copy must
//! be named with the reason its HTTPS cannot be seen.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{Client, Server, Trace, Tracer, python_dir, scratch_dir, venv_python};

/// Builds the fixture; returns it and a stripped copy.
fn build_fixture() -> (PathBuf, PathBuf) {
    let dir = scratch_dir("static-tls");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/static_tls_client.c");
    let library = dir.join("libstatictls.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .args(["/usr/lib/x86_64-linux-gnu/libssl.a", "/usr/lib/x86_64-linux-gnu/libcrypto.a"])
        .args(["-Wl,--exclude-libs,ALL", "-lpthread", "-ldl"])
        .status()
        .unwrap();
    assert!(built.success(), "gcc could not build the static TLS fixture (libssl-dev installed?)");
    let stripped = dir.join("libstatictls-stripped.so");
    assert!(
        Command::new("strip").arg("--strip-all").arg("-o").arg(&stripped).arg(&library).status().unwrap().success()
    );
    // The premise: OpenSSL's functions are in .symtab only.
    let symbols = |args: &[&str], file: &Path| {
        String::from_utf8(Command::new("nm").args(args).arg(file).output().unwrap().stdout).unwrap()
    };
    assert!(!symbols(&["-D", "--defined-only"], &library).contains(" SSL_write"), "SSL_write is exported");
    assert!(symbols(&[], &library).contains(" t SSL_write_ex"), "SSL_write_ex is not in .symtab");
    (library, stripped)
}

fn trace_app(library: &Path, extra: &[&str]) -> Trace {
    let server = Server::https();
    let library = library.display().to_string();
    let args = [&["--library", library.as_str()], extra].concat();
    let mut client = Client::start_script(&venv_python(), "static_tls_app.py", &server, &args);
    let tracer = Tracer::attach(&[client.pid], &[]);
    client.go();
    client.finish();
    tracer.wait()
}

fn request_line() -> i64 {
    let source = std::fs::read_to_string(python_dir().join("static_tls_app.py")).unwrap();
    source.lines().position(|line| line.contains("# request: static")).unwrap() as i64 + 1
}

fn assert_llm_spans(trace: &Trace, library: &Path) {
    assert!(trace.stderr.contains(&format!("probes on {}", library.display())), "{}", trace.stderr);
    assert_eq!(trace.spans.len(), 2, "{}\n{}", trace.stderr, trace.json_text);
    for span in &trace.spans {
        let a = &span["attributes"];
        assert_eq!(a["gen_ai.request.model"], "gpt-4o-mini");
        assert!(a["gen_ai.usage.input_tokens"].as_i64().unwrap() > 0, "{a}");
        assert_eq!(a["code.function.name"], "ask_with_static_tls");
        assert_eq!(a["code.line.number"].as_i64(), Some(request_line()));
        assert_eq!(a["server.address"], "localhost", "SNI and Host");
    }
}

#[test]
fn openssl_linked_statically_is_found_through_its_symbol_table() {
    let (library, _) = build_fixture();
    assert_llm_spans(&trace_app(&library, &[]), &library);
}

#[test]
fn an_object_loaded_after_attach_is_found_too() {
    let (library, _) = build_fixture();
    assert_llm_spans(&trace_app(&library, &["--load-late"]), &library);
}

#[test]
fn a_stripped_static_openssl_is_named_with_the_reason() {
    let (_, stripped) = build_fixture();
    let trace = trace_app(&stripped, &[]);
    let expected = format!(
        "HTTPS through {} is not visible: OpenSSL linked in without its symbols (stripped)",
        stripped.display()
    );
    assert!(trace.stderr.contains(&expected), "{}", trace.stderr);
    assert!(trace.spans.is_empty(), "{}", trace.json_text);
}
