//! Every CPython on these machines — pyenv 3.8 to 3.13 (3.8/3.9 call
//! `SSL_read`/`SSL_write`, later ones the `_ex` variants), Debian's static
//! `python3.11`, and Debian sid's static 3.14 and 3.15 chroot'ed in
//! namespaces of their own — traced with standard-library clients.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use integration_tests::{Client, Server, Tracer, interpreter};

const PLAN: &str = "GET /json,POST /echo,GET /chunked,GET /encoded?encoding=gzip,GET /status/404";

fn check(label: &str) {
    let python = interpreter(label);
    let minor = python.minor();
    let server = Server::https();
    for lib in ["http.client", "urllib"] {
        let mut client = Client::start_in(&python, &server, &["--lib", lib, "--paths", PLAN, "--repeat", "2"]);
        let tracer = Tracer::attach(&[client.pid], &[]);
        client.go();
        let mut done = client.finish();
        done.sort();
        let trace = tracer.wait();
        assert_eq!(trace.done(), done, "{label} {lib}: {}", trace.stderr);
        let version = trace.spans[0]["resource"]["process.runtime.version"].as_str().unwrap().to_owned();
        assert!(version.starts_with(&format!("3.{minor}")), "{label}: runtime version {version}");
    }
}

integration_tests::test_each_interpreter!(check);
