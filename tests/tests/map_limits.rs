//! The kernel maps that hold per-process state have capacities, and hitting
//! one is told, never silent: an LRU map that evicts entries and a map
//! that refuses them are both counted in the summary and named in a
//! warning that says which `--map-capacity` to raise. Within capacity,
//! nothing is evicted and exited processes' entries are swept out.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use serde_json::Value;

use integration_tests::{Server, python_dir, pytrace_run, venv_python};

fn kernel_map(json_text: &str, name: &str) -> Value {
    let summary: Value = json_text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value.get("summary").is_some())
        .expect("a summary line")["summary"]
        .clone();
    summary["kernel_maps"].as_array().unwrap().iter().find(|m| m["map"] == name).unwrap().clone()
}

/// Opens `count` TCP connections to the server at once, holds them, closes them.
fn open_sockets(server: &Server, count: usize) -> String {
    format!(
        "import socket, time\n\
         held = [socket.create_connection(('127.0.0.1', {})) for _ in range({count})]\n\
         time.sleep(0.3)\n\
         for s in held: s.close()",
        server.port
    )
}

#[test]
fn a_full_socket_map_evicts_and_says_so() {
    let server = Server::plain();
    let python = venv_python();
    let script = open_sockets(&server, 20);
    let run = pytrace_run(&["--map-capacity", "sockets=4"], &[python.to_str().unwrap(), "-c", &script], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sockets = kernel_map(&run.json_text, "sockets");
    assert_eq!(sockets["capacity"], 4);
    let evicted = sockets["evicted"].as_u64().unwrap();
    assert!(evicted >= 16, "20 sockets held at once in room for 4: {sockets}");
    assert!(
        run.stderr.contains(&format!(
            "the kernel map of sockets was full (4 entries): {evicted} older entries were evicted to make room; \
             raise it with --map-capacity sockets=N"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn within_capacity_nothing_is_evicted_and_closed_sockets_leave() {
    let server = Server::plain();
    let python = venv_python();
    let script = open_sockets(&server, 20);
    let run = pytrace_run(&[], &[python.to_str().unwrap(), "-c", &script], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sockets = kernel_map(&run.json_text, "sockets");
    assert_eq!((sockets["evicted"].as_u64(), sockets["entries"].as_u64()), (Some(0), Some(0)), "{sockets}");
    assert!(!run.stderr.contains("was full"), "{}", run.stderr);
}

#[test]
fn a_full_map_of_traced_processes_refuses_children_and_says_so() {
    let server = Server::https();
    let python = venv_python();
    let url = format!("{}/json", server.base());
    let run = pytrace_run(
        &["--map-capacity", "traced_processes=1"],
        &[
            python.to_str().unwrap(),
            python_dir().join("fork_workers.py").to_str().unwrap(),
            &url,
            server.ca.as_ref().unwrap().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let traced = kernel_map(&run.json_text, "traced_processes");
    assert!(traced["refused"].as_u64().unwrap() >= 2, "two pool workers at least: {traced}");
    assert!(run.spans.is_empty(), "the workers made the calls and were not traced: {}", run.json_text);
    assert!(
        run.stderr.contains("cannot be traced: the kernel map of traced processes is full"),
        "each refused process is named: {}",
        run.stderr
    );
    assert!(run.stderr.contains("raise it with --map-capacity traced_processes=N"), "{}", run.stderr);
}

#[test]
fn a_bad_capacity_is_refused_before_tracing() {
    let python = venv_python();
    let run = pytrace_run(&["--map-capacity", "socket=5"], &[python.to_str().unwrap(), "-c", "pass"], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no kernel map is called `socket`; the maps are: traced_processes"), "{}", run.stderr);
}
