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

/// The chart rendered with `values` (tests/python/render_chart.py), or
/// Helm's refusal (`{"refused": message}`).
fn render_or_refuse(values: &Value) -> Value {
    let output = Command::new(venv_python())
        .arg(python_dir().join("render_chart.py"))
        .arg(workspace().join("deploy/helm/pytrace"))
        .args(["--values", &values.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The chart rendered with `values`, which Helm must accept.
fn render(values: &Value) -> Value {
    let rendered = render_or_refuse(values);
    assert!(rendered.get("refused").is_none(), "{values} refused: {}", rendered["refused"]);
    rendered
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
    // Cheap probes: HTTP answers of the running agent; nothing reloads the kernel programs.
    for (probe, path) in [("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container(&rendered)[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container(&rendered)[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    let args = container(&rendered)["args"].as_array().unwrap();
    assert!(args.contains(&json!("--metrics-address=[::]:9464")), "both address families: {args:?}");
    assert!(pod.get("priorityClassName").is_none(), "no priority class a stock cluster may refuse");

    // Exactly what the agent reads: pods (list, watch), ReplicaSets and Jobs (get).
    assert_eq!(
        object(&rendered, "ClusterRole")["rules"],
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
        ])
    );
    let test_pod = &rendered["hooks"][0];
    assert_eq!(test_pod["metadata"]["annotations"]["helm.sh/hook"], "test", "`helm test` checks /readyz: {test_pod}");
    assert!(test_pod["spec"]["containers"][0]["args"][0].as_str().unwrap().contains(":9464/readyz"));
    let notes = rendered["notes"].as_str().unwrap();
    for told in ["rollout status daemonset/pytrace", "pod-security.kubernetes.io/enforce=privileged", "/readyz"] {
        assert!(notes.contains(told), "NOTES.txt tells {told}: {notes}");
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
    let monitor = object(&rendered, "ServiceMonitor");
    assert!(monitor["spec"]["endpoints"][0].get("honorLabels").is_none(), "`job` stays the scraper's: {monitor}");
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
        "pytrace_events_dropped_total",
        "pytrace_probe_failures_total",
        "pytrace_spans_exported_total",
        "pytrace_spans_failed_total",
        "pytrace_spans_spooled_total",
        "pytrace_spans_dropped_total",
        "pytrace_spool_spans",
        "pytrace_kernel_map_evicted_total",
    ];
    let variables: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(variables, ["datasource", "cluster", "namespace", "node", "service"]);
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(served.iter().any(|name| expr.contains(name)), "{expr} queries a metric pytrace serves");
            if !expr.contains("pytrace_") || expr.contains("pytrace_gen_ai") {
                for filter in [
                    "k8s_cluster_name=~\"$cluster\"",
                    "k8s_namespace_name=~\"$namespace\"",
                    "service_name=~\"$service\"",
                ] {
                    assert!(expr.contains(filter), "a span metric's panel follows {filter}: {expr}");
                }
                assert!(!expr.contains("job"), "job is the scraper's: {expr}");
            }
        }
    }
}

/// The DaemonSet's container arguments and environment, as rendered, run
/// by the real binary against the stand-in API server; its probes' paths
/// answer on both address families.
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
            Some(("--metrics-address", address)) => format!("--metrics-address={}", address.replace(":9464", ":0")),
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
    let port = url.rsplit(':').next().unwrap();
    let status = |host: &str, path: &str| -> Value {
        let answer = Command::new(venv_python())
            .arg(python_dir().join("scrape_metrics.py"))
            .arg(format!("http://{host}:{port}{path}"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&answer.stdout).unwrap()["status"].clone()
    };
    // Ready within the startup probe's minute (the programs load meanwhile), as the kubelet waits.
    let startup = deadline.max(Instant::now() + Duration::from_secs(60));
    while status("127.0.0.1", "/readyz") != 200 {
        assert!(Instant::now() < startup, "not ready within the startup probe's time: {seen:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    for host in ["127.0.0.1", "[::1]"] {
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let path = container(&rendered)[probe]["httpGet"]["path"].as_str().unwrap();
            assert_eq!(status(host, path), 200, "{probe} over {host}: {seen:?}");
        }
    }
    drop(guard);
}

/// `helm lint --strict` finds nothing beyond information (an icon) for the
/// oldest and newest Kubernetes the chart is for.
#[test]
fn the_chart_passes_strict_lint() {
    let output = Command::new(venv_python())
        .arg(python_dir().join("render_chart.py"))
        .arg("--lint")
        .arg(workspace().join("deploy/helm/pytrace"))
        .output()
        .unwrap();
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    for (version, report) in reports.as_object().unwrap() {
        assert_eq!(report["errors"], json!([]), "{version}: {report}");
        for message in report["messages"].as_array().unwrap() {
            assert!(message["severity"].as_u64().unwrap() < 2, "{version}: a warning or error: {message}");
        }
    }
    assert_eq!(reports.as_object().unwrap().len(), 2);
}

// Value sets a platform engineer writes: each renders a valid manifest
// (every object against the Kubernetes 1.27–1.37 schemas) that means what
// the values say, or is refused by Helm with the key's name.

/// The container's arguments of a manifest that must validate.
fn rendered_args(values: Value) -> Vec<String> {
    let rendered = render(&values);
    assert_eq!(rendered["invalid"], json!([]), "{values}");
    container(&rendered)["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

#[test]
fn arguments_sizes_and_names_render_as_written() {
    // Arguments holding YAML's special characters stay one argument each, whole.
    let args = rendered_args(json!({
        "include": ["cmdline=*: *", "cmdline=python app.py #prod"],
        "extraArgs": ["--redact=(?i)secret: *\\S+", "--content-max-bytes=100"],
        "clusterName": "eu: west #1",
    }));
    for expected in [
        "--include=cmdline=*: *",
        "--include=cmdline=python app.py #prod",
        "--redact=(?i)secret: *\\S+",
        "--content-max-bytes=100",
        "--cluster-name=eu: west #1",
    ] {
        assert!(args.contains(&expected.to_owned()), "{expected} in {args:?}");
    }
    // Sizes as numbers or quantities.
    for (size, bytes) in [(json!("1Gi"), "1073741824"), (json!("512Mi"), "536870912"), (json!(2097152), "2097152")] {
        let args = rendered_args(json!({"spool": {"maxBytes": size}}));
        assert!(args.contains(&format!("--spool-max-bytes={bytes}")), "{size}: {args:?}");
    }
    // A Secret named `true` stays a string.
    let rendered = render(&json!({"otlp": {"endpoint": "http://c:4317", "headersSecret": {"name": "true"}}}));
    let env = container(&rendered)["env"].as_array().unwrap();
    let headers = env.iter().find(|e| e["name"] == "OTEL_EXPORTER_OTLP_HEADERS").unwrap();
    assert_eq!(headers["valueFrom"]["secretKeyRef"]["name"], "true");
}

#[test]
fn an_existing_account_and_optional_objects_render_as_asked() {
    // An existing account is used, not the namespace's default.
    let rendered = render(&json!({"serviceAccount": {"create": false, "name": "ops-agent"}}));
    assert_eq!(object(&rendered, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"], "ops-agent");
    assert_eq!(object(&rendered, "ClusterRoleBinding")["subjects"][0]["name"], "ops-agent");
    assert!(rendered["objects"].as_array().unwrap().iter().all(|o| o["kind"] != "ServiceAccount"));
    // The spool in an emptyDir; no RBAC, no Service; a PodMonitor instead.
    let rendered = render(&json!({
        "spool": {"type": "emptyDir"},
        "rbac": {"create": false},
        "service": {"enabled": false},
        "metrics": {"podMonitor": {"enabled": true}},
    }));
    let kinds: Vec<&str> =
        rendered["objects"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert!(!kinds.iter().any(|k| ["ClusterRole", "ClusterRoleBinding", "Service"].contains(k)), "{kinds:?}");
    assert!(kinds.contains(&"PodMonitor"), "{kinds:?}");
    let volumes = object(&rendered, "DaemonSet")["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let spool = volumes.iter().find(|v| v["name"] == "spool").unwrap();
    assert_eq!(spool["emptyDir"], json!({}), "{spool}");
}

#[test]
fn extension_points_land_where_a_pod_spec_has_them() {
    let rendered = render(&json!({
        "env": [{"name": "OTEL_EXPORTER_OTLP_COMPRESSION", "value": "gzip"}],
        "envFrom": [{"configMapRef": {"name": "otel-env"}}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "otlp-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/otlp-ca", "readOnly": true}],
        "podAnnotations": {"team": "platform"},
        "podLabels": {"tier": "agent"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "feature.node.kubernetes.io/kernel-version.major", "operator": "Gt", "values": ["5"]}]}
        ]}}},
        "securityContext": {"privileged": true},
        "priorityClassName": "system-node-critical",
        "prices": {"my-finetune": {"input": 0.5, "output": 1.5}},
        "nameOverride": "tracer",
    }));
    assert_eq!(rendered["invalid"], json!([]));
    let pod = &object(&rendered, "DaemonSet")["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert!(c["env"].as_array().unwrap().iter().any(|e| e["name"] == "OTEL_EXPORTER_OTLP_COMPRESSION"));
    assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "otel-env");
    assert!(pod["spec"]["volumes"].as_array().unwrap().iter().any(|v| v["name"] == "ca"));
    assert!(c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/etc/otlp-ca"));
    assert_eq!(pod["metadata"]["annotations"]["team"], "platform");
    assert_eq!(pod["metadata"]["labels"]["tier"], "agent");
    assert!(pod["spec"]["affinity"]["nodeAffinity"].is_object());
    assert_eq!(c["securityContext"], json!({"privileged": true}), "replaced whole");
    assert_eq!(pod["spec"]["priorityClassName"], "system-node-critical");
    assert!(c["args"].as_array().unwrap().contains(&json!("--prices=/etc/pytrace/prices.json")));
    let prices = rendered["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    let table: Value = serde_json::from_str(prices["data"]["prices.json"].as_str().unwrap()).unwrap();
    assert_eq!(table["models"]["my-finetune"]["output"], 1.5, "the --prices file's shape");
    assert_eq!(object(&rendered, "DaemonSet")["metadata"]["name"], "pytrace-tracer", "nameOverride");
}

#[test]
fn wrong_values_are_refused_with_the_key_at_fault() {
    for (values, key) in [
        (json!({"otlp": {"endpont": "http://c:4317"}}), "endpont"),
        (json!({"otlp": {"protocol": "http/json"}}), "/otlp/protocol"),
        (json!({"spool": {"hostPath": ""}}), "/spool/hostPath"),
        (json!({"spool": {"maxBytes": "lots"}}), "/spool/maxBytes"),
        (json!({"spool": {"maxBytes": 1000}}), "/spool/maxBytes"),
        (json!({"include": ["namespace=shop"]}), "/include/0"),
        (json!({"metrics": {"port": "9464"}}), "/metrics/port"),
        (json!({"serviceAccount": {"create": false}}), "serviceAccount.name"),
        (json!({"service": {"enabled": false}, "metrics": {"serviceMonitor": {"enabled": true}}}), "service.enabled"),
    ] {
        let refused = render_or_refuse(&values);
        let message = refused["refused"].as_str().unwrap_or_else(|| panic!("{values} was not refused"));
        assert!(message.contains(key), "{values}: the message names {key}: {message}");
    }
}
