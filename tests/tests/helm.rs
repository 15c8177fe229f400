//! The Helm chart (deploy/helm/pytrace), without a cluster: rendered by
//! Helm's own engine (helm-python-sdk ships Helm's Go library) for the
//! default values and for others, every object validated against the
//! Kubernetes schemas (kubernetes-validate, strict), the least-privilege
//! settings checked, the plain manifest kept equal to the default
//! rendering, the dashboard's queries checked against what `/metrics`
//! serves — and the DaemonSet's own container arguments and probe run by
//! the real binary against the stand-in API server.

#![expect(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use integration_tests::kube::{ApiServer, NODE, kubeconfig};
use integration_tests::{ProcessGuard, line_reader, python_dir, pytrace_bin, scratch_dir, venv_python};

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The chart rendered with `values` (tests/python/render_chart.py).
fn render(values: &Value) -> Value {
    let output = Command::new(venv_python())
        .arg(python_dir().join("render_chart.py"))
        .arg(workspace().join("deploy/helm/pytrace"))
        .args(["--values", &values.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn object<'a>(rendered: &'a Value, kind: &str) -> &'a Value {
    rendered["objects"].as_array().unwrap().iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

fn container(rendered: &Value) -> &Value {
    &object(rendered, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn the_default_rendering_is_valid_least_privilege_and_equal_to_the_manifest() {
    let rendered = render(&json!({}));
    assert_eq!(rendered["invalid"], json!([]), "every object passes the Kubernetes schemas");
    assert_eq!(rendered["unchecked"], json!([]), "only built-in kinds by default");
    let kinds: Vec<&str> =
        rendered["objects"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for kind in ["DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    let pod = &object(&rendered, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "processes of every pod, by host PID");
    let security = &container(&rendered)["securityContext"];
    assert_eq!(security["privileged"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        security["capabilities"]["add"],
        json!(["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"]),
        "the measured minimum"
    );
    let env = container(&rendered)["env"].as_array().unwrap();
    let node_name = env.iter().find(|e| e["name"] == "NODE_NAME").unwrap();
    assert_eq!(node_name["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName", "the downward API");
    let mounts = container(&rendered)["volumeMounts"].as_array().unwrap();
    for (path, read_only) in
        [("/sys/kernel/tracing", true), ("/sys/fs/cgroup", true), ("/var/lib/pytrace/spool", false)]
    {
        let mount = mounts.iter().find(|m| m["mountPath"] == path).unwrap_or_else(|| panic!("{path} mounted"));
        assert_eq!(mount["readOnly"].as_bool().unwrap_or(false), read_only, "{path}");
    }
    assert_eq!(container(&rendered)["readinessProbe"]["exec"]["command"], json!(["pytrace", "doctor"]));
    assert_eq!(container(&rendered)["livenessProbe"]["httpGet"]["path"], "/healthz");

    for rule in object(&rendered, "ClusterRole")["rules"].as_array().unwrap() {
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(["get", "list", "watch"].contains(&verb.as_str().unwrap()), "read-only: {rule}");
        }
    }
    let manifest = std::fs::read_to_string(workspace().join("deploy/kubernetes/pytrace.yaml")).unwrap();
    assert_eq!(
        manifest,
        rendered["manifest"].as_str().unwrap(),
        "deploy/kubernetes/pytrace.yaml is the chart's default rendering: run `cargo xtask manifest`"
    );
}

#[test]
fn other_values_render_valid_objects_and_a_dashboard_of_served_metrics() {
    let rendered = render(&json!({
        "clusterName": "prod-eu",
        "otlp": {"endpoint": "http://otel-collector.observability:4317", "headersSecret": {"name": "otlp-auth"}},
        "include": ["k8s-namespace=shop"],
        "capabilities": ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN", "CHECKPOINT_RESTORE"],
        "metrics": {"serviceMonitor": {"enabled": true}},
        "dashboard": {"configMap": true},
        "captureContent": true,
    }));
    assert_eq!(rendered["invalid"], json!([]));
    assert_eq!(rendered["unchecked"], json!(["ServiceMonitor"]), "a CRD: no built-in schema");
    let args = container(&rendered)["args"].as_array().unwrap();
    for expected in ["--cluster-name=prod-eu", "--include=k8s-namespace=shop", "--capture-content"] {
        assert!(args.contains(&json!(expected)), "{expected} in {args:?}");
    }
    let env = container(&rendered)["env"].as_array().unwrap();
    let headers = env.iter().find(|e| e["name"] == "OTEL_EXPORTER_OTLP_HEADERS").unwrap();
    assert_eq!(headers["valueFrom"]["secretKeyRef"]["name"], "otlp-auth", "secrets stay in the Secret");

    let dashboard: Value =
        serde_json::from_str(object(&rendered, "ConfigMap")["data"]["pytrace.json"].as_str().unwrap()).unwrap();
    let served = [
        "gen_ai_client_token_usage_sum",
        "pytrace_gen_ai_client_cost_usd_total",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "http_client_request_duration_seconds_count",
        "pytrace_processes_traced",
        "pytrace_events_lost_total",
        "pytrace_kernel_map_evicted_total",
    ];
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(served.iter().any(|name| expr.contains(name)), "{expr} queries a metric pytrace serves");
        }
    }
}

/// The DaemonSet's container arguments and environment, as rendered, run
/// by the real binary against the stand-in API server; its readiness
/// probe's command passes here.
#[test]
fn the_daemonset_s_command_runs() {
    let rendered = render(&json!({}));
    let mut api = ApiServer::start(0);
    api.put(json!({"metadata": {"namespace": "shop", "name": "idle", "uid": "u-idle"}, "spec": {"nodeName": NODE}}));
    let spool = scratch_dir("daemonset-spool");
    let args: Vec<String> = container(&rendered)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .map(|a| match a.split_once('=') {
            // A free port and a scratch spool here; the rest as rendered.
            Some(("--metrics-address", _)) => "--metrics-address=127.0.0.1:0".to_owned(),
            Some(("--spool-dir", _)) => format!("--spool-dir={}", spool.display()),
            _ => a,
        })
        .collect();
    let mut child = Command::new(pytrace_bin())
        .args(&args)
        .env("NODE_NAME", NODE)
        .env("KUBECONFIG", kubeconfig(api.port, &api.ca))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = ProcessGuard(child);
    let lines = line_reader(stderr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    // The watch and the endpoint start side by side: their lines come in either order.
    let started = |seen: &[String]| {
        seen.iter().any(|l| l.contains("Kubernetes: watching the 1 pods of node"))
            && seen.iter().any(|l| l.starts_with("pytrace: serving /metrics"))
    };
    while !started(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            lines.recv_timeout(left).unwrap_or_else(|_| panic!("the DaemonSet's command did not start: {seen:?}")),
        );
    }
    let url = seen.iter().find_map(|l| l.strip_prefix("pytrace: serving /metrics, /healthz and /readyz on ")).unwrap();
    let readyz = Command::new(venv_python())
        .arg(python_dir().join("scrape_metrics.py"))
        .arg(format!("{url}/readyz"))
        .output()
        .unwrap();
    let readyz: Value = serde_json::from_slice(&readyz.stdout).unwrap();
    assert_eq!(readyz["status"], 200, "{seen:?}");
    drop(guard);

    let probe = &container(&rendered)["readinessProbe"]["exec"]["command"];
    assert_eq!(probe[0], "pytrace");
    let doctor = Command::new(pytrace_bin()).arg(probe[1].as_str().unwrap()).output().unwrap();
    assert!(doctor.status.success(), "{}", String::from_utf8_lossy(&doctor.stdout));
}
