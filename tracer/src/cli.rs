//! Command-line flags (clap derive), turned into a validated configuration
//! before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pytrace_core::llm::content::{ContentPolicy, DEFAULT_MAX_BYTES, PatternError};
use pytrace_core::python::patterns::FunctionPattern;
use tracer_common::{DEFAULT_CAPTURE_LIMIT, MAX_CAPTURE_LIMIT};

use crate::kubernetes::{KubernetesMode, KubernetesOptions};
use crate::probes::{MapCapacities, MapCapacityError};
use crate::sinks::Format;
use crate::sinks::otlp::config::{OtlpConfig, OtlpConfigError};
use crate::sinks::report::Budget;
use crate::targets::inspect::process::ResourceDefaults;
use crate::targets::select::rules::{Selection, SelectionError};

#[derive(Parser, Debug)]
#[command(
    name = "pytrace",
    version = crate::VERSION,
    about = "See every HTTP and LLM call a running Python program makes — no restart, no code change."
)]
pub struct Cli {
    /// Log pytrace's own diagnostics (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command and trace it and its children; report, and gate on LLM spend.
    Run(RunArgs),
    /// Trace running processes' HTTPS traffic until they exit, Ctrl-C, or --duration.
    Attach(AttachArgs),
    /// Trace every Python process on this host — running, and started later, containers included.
    Node(NodeArgs),
    /// Check this host (and, with --pid, a process): what will and won't work, and what to change.
    Doctor(DoctorArgs),
    /// Benchmarks: replay a session recorded with --record through the
    /// user-space pipeline, without the kernel, and print its throughput.
    #[command(hide = true)]
    Replay(ReplayArgs),
}

/// `pytrace node`: no PIDs; every Python process on the host.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Trace only Python processes matching KEY=GLOB (keys: exe, cmdline, container, user, k8s-namespace,
    /// k8s-pod-label=NAME, k8s-pod-annotation=NAME); repeatable, any may match.
    #[arg(long, value_name = "KEY=GLOB")]
    pub include: Vec<String>,
    /// Leave out Python processes matching KEY=GLOB; repeatable; wins over --include.
    #[arg(long, value_name = "KEY=GLOB")]
    pub exclude: Vec<String>,
    /// Pod metadata from the Kubernetes API: `auto` (on in a pod, or with a kubeconfig), `on`, `off`.
    #[arg(long, value_enum, default_value_t = KubernetesMode::Auto)]
    pub kubernetes: KubernetesMode,
    /// The kubeconfig to reach the API server with (else in-cluster settings).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name, whose pods are watched (the DaemonSet sets NODE_NAME from spec.nodeName).
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// The cluster's name, for `k8s.cluster.name`.
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

impl NodeArgs {
    pub fn validate(
        self,
        stdout_is_terminal: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(TraceConfig, Selection, KubernetesOptions), ConfigError> {
        let selection = Selection::new(&self.include, &self.exclude)?;
        let kubernetes = KubernetesOptions {
            mode: self.kubernetes,
            kubeconfig: self.kubeconfig.filter(|path| !path.as_os_str().is_empty()),
            node_name: self.node_name.filter(|name| !name.trim().is_empty()),
            cluster_name: self.cluster_name,
            in_cluster: env("KUBERNETES_SERVICE_HOST").is_some_and(|host| !host.is_empty()),
        };
        Ok((self.trace.validate(Vec::new(), stdout_is_terminal, env)?, selection, kubernetes))
    }
}

/// `pytrace doctor [--pid PID]`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Also check what pytrace finds in this process: interpreter, layout, TLS objects.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Load every kernel program and print what each asks of this kernel's verifier
    /// (instructions processed, combined stack) against pytrace's budgets.
    #[arg(long)]
    pub programs: bool,
}

/// `pytrace replay FILE`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recording made with `--record`.
    #[arg(value_name = "FILE")]
    pub recording: PathBuf,
    /// Replay the recording this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Instead: open this many connections at once, each a copy of the
    /// recording's first one up to its first response, then finish them;
    /// report memory while they are all open.
    #[arg(long, value_name = "N")]
    pub connections: Option<u32>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Process to trace (repeatable).
    #[arg(long = "pid", required = true, value_name = "PID")]
    pub pids: Vec<u32>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// `pytrace run [flags] -- CMD [ARGS…]`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Write a self-contained HTML report (timeline of all calls, per-model charts) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write a Markdown summary to FILE (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Write the summary's figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Fail (exit code 70) when the LLM calls cost more than USD in total.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Fail (exit code 70) when the LLM calls use more than N tokens (input + output).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Fail (exit code 70) when more than N LLM calls are made.
    #[arg(long, value_name = "N")]
    pub max_llm_calls: Option<u64>,
    /// Hosts the command may call (repeatable, globs allowed); a request to
    /// any other host fails the run (exit code 71).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Under sudo, run the command as root too (by default it runs as the
    /// user who invoked sudo, while pytrace keeps its privileges).
    #[arg(long)]
    pub run_as_root: bool,
    /// The command to run and trace, with its children.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The tracing and output flags `attach` and `run` share.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Terminal output: `pretty` (default on a terminal), `json` (one object per line), or `none`.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write JSON lines to FILE; the terminal then shows the pretty view.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Bytes captured from the start of each SSL call, plus a larger call's
    /// last 32 KiB; the rest is counted as truncated (max 1048576).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CAPTURE_LIMIT)]
    pub capture_limit: u32,
    /// Entries of a kernel map holding per-process state, instead of its
    /// default: `sockets=131072` (repeatable; the maps and their defaults are
    /// in docs/node.md; evictions and refusals are reported).
    #[arg(long = "map-capacity", value_name = "MAP=ENTRIES")]
    pub map_capacities: Vec<String>,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics, with /healthz
    /// and /readyz for liveness and readiness probes.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_address: Option<String>,
    /// JSON file of model prices (USD per million tokens) that adds to or replaces the built-in table.
    #[arg(long, value_name = "FILE", env = "PYTRACE_PRICES")]
    pub prices: Option<PathBuf>,
    /// Record prompts and completions (gen_ai.input.messages, …), redacted. Off by default.
    #[arg(long)]
    pub capture_content: bool,
    /// Bytes of text per content attribute with --capture-content.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub content_max_bytes: usize,
    /// Extra regular expression to redact from captured content (repeatable).
    #[arg(long = "redact", value_name = "REGEX")]
    pub redact: Vec<String>,
    /// Treat Python files under this path as library code when naming the
    /// calling function (repeatable; the standard library and site-packages always are).
    #[arg(long = "library-path", value_name = "PREFIX")]
    pub library_paths: Vec<String>,
    /// Make each call of matching Python functions a span, parent of the HTTP
    /// and LLM calls made inside it: `module:Qualname`, globs allowed
    /// (`myapp.agent:*`), repeatable. Probes every Python call while on.
    #[arg(long = "trace-function", value_name = "PATTERN")]
    pub trace_functions: Vec<FunctionPattern>,
    /// Export spans and metrics over OTLP to this collector (also
    /// OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_EXPORTER_OTLP_* variables).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Where spans wait while the collector is unreachable (kept across runs).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SPOOL_DIR)]
    pub spool_dir: PathBuf,
    /// Size cap of the spool; when full, the oldest spans are dropped (and counted).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SPOOL_MAX_BYTES)]
    pub spool_max_bytes: u64,
    /// Benchmarks only: attach the same probes running programs that do no
    /// work (the cost floor); no spans are produced.
    #[arg(long, hide = true)]
    pub bare_probes: bool,
    /// Benchmarks only: time every kernel program (the kernel's BPF run-time
    /// statistics, host-wide while pytrace runs) and report runs and time per
    /// program in the summary.
    #[arg(long, hide = true)]
    pub program_stats: bool,
    /// Benchmarks only: write every kernel event to FILE, for `pytrace replay`.
    /// The file holds the captured plaintext, secrets included.
    #[arg(long, value_name = "FILE", hide = true)]
    pub record: Option<PathBuf>,
}

pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/pytrace/spool";
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Validated settings of a tracing session: `attach`'s, and the part of
/// `run`'s and `node`'s they share with it.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    pub pids: Vec<u32>,
    pub terminal_format: Format,
    pub json_file: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub capture_limit: u32,
    /// `--metrics-address`, resolved.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Each kernel map's capacity, indexed by `KernelMap`.
    pub map_capacities: MapCapacities,
    pub prices: Option<PathBuf>,
    /// `Some` with --capture-content.
    pub content: Option<ContentPolicy>,
    pub library_paths: Vec<String>,
    pub trace_functions: Vec<FunctionPattern>,
    /// `Some` when OTLP export is on.
    pub otlp: Option<OtlpConfig>,
    pub resource_defaults: ResourceDefaults,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub bare_probes: bool,
    pub program_stats: bool,
    pub record: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--duration must be a positive number of seconds, not {0}")]
    Duration(f64),
    #[error("--capture-limit must be between 1 and {MAX_CAPTURE_LIMIT} bytes, not {0}")]
    CaptureLimit(u32),
    #[error(transparent)]
    MapCapacity(#[from] MapCapacityError),
    #[error("--metrics-address takes HOST:PORT (such as [::]:9464 or 0.0.0.0:9464), not `{0}`")]
    MetricsAddress(String),
    #[error("--pid 0 is not a process")]
    ZeroPid,
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error(transparent)]
    Redaction(#[from] PatternError),
    #[error("--content-max-bytes and --redact only apply with --capture-content")]
    ContentFlagsWithoutCapture,
    #[error(transparent)]
    Otlp(#[from] OtlpConfigError),
    #[error("--spool-max-bytes must be at least 1 MiB, not {0}")]
    SpoolSize(u64),
    #[error("--max-cost must be a non-negative number of US dollars, not {0}")]
    MaxCost(f64),
}

impl AttachArgs {
    /// Checks the flags; OTLP settings come from `--otlp-endpoint` and the
    /// `OTEL_*` variables `env` looks up.
    pub fn validate(
        self,
        stdout_is_terminal: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TraceConfig, ConfigError> {
        if self.pids.contains(&0) {
            return Err(ConfigError::ZeroPid);
        }
        let mut pids = self.pids;
        pids.dedup();
        self.trace.validate(pids, stdout_is_terminal, env)
    }
}

/// Validated `run` settings: the tracing configuration (no pids: the
/// command's process and its children are traced), reports, and the budget.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub trace: TraceConfig,
    pub command: Vec<String>,
    pub report_html: Option<PathBuf>,
    pub summary_md: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub budget: Budget,
    /// `--run-as-root`: under sudo, the command keeps root.
    pub run_as_root: bool,
}

impl RunArgs {
    pub fn validate(
        self,
        stdout_is_terminal: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RunConfig, ConfigError> {
        if let Some(cost) = self.max_cost
            && !(cost.is_finite() && cost >= 0.0)
        {
            return Err(ConfigError::MaxCost(cost));
        }
        Ok(RunConfig {
            trace: self.trace.validate(Vec::new(), stdout_is_terminal, env)?,
            command: self.command,
            report_html: self.report_html,
            summary_md: self.summary_md,
            summary_json: self.summary_json,
            run_as_root: self.run_as_root,
            budget: Budget {
                max_cost: self.max_cost,
                max_tokens: self.max_tokens,
                max_llm_calls: self.max_llm_calls,
                allow_hosts: self.allow_hosts,
            },
        })
    }
}

impl TraceArgs {
    fn validate(
        self,
        pids: Vec<u32>,
        stdout_is_terminal: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TraceConfig, ConfigError> {
        let duration = match self.duration {
            Some(s) if !(s.is_finite() && s > 0.0) => return Err(ConfigError::Duration(s)),
            Some(s) => Some(Duration::from_secs_f64(s)),
            None => None,
        };
        if self.capture_limit == 0 || self.capture_limit > MAX_CAPTURE_LIMIT {
            return Err(ConfigError::CaptureLimit(self.capture_limit));
        }
        let content =
            match (self.capture_content, self.redact.is_empty() && self.content_max_bytes == DEFAULT_MAX_BYTES) {
                (true, _) => Some(ContentPolicy::new(self.content_max_bytes, &self.redact)?),
                (false, true) => None,
                (false, false) => return Err(ConfigError::ContentFlagsWithoutCapture),
            };
        let otlp = OtlpConfig::resolve(self.otlp_endpoint.as_deref(), &env)?;
        let resource_defaults = ResourceDefaults::from_env(&env);
        if self.spool_max_bytes < 1 << 20 {
            return Err(ConfigError::SpoolSize(self.spool_max_bytes));
        }
        let terminal_format = match (&self.output, self.format) {
            (Some(_), _) => Format::Pretty,
            (None, Some(format)) => format,
            (None, None) if stdout_is_terminal => Format::Pretty,
            (None, None) => Format::Json,
        };
        Ok(TraceConfig {
            pids,
            terminal_format,
            json_file: self.output,
            duration,
            capture_limit: self.capture_limit,
            map_capacities: MapCapacities::parse(&self.map_capacities)?,
            metrics_address: self.metrics_address.as_deref().map(resolve_metrics_address).transpose()?,
            prices: self.prices,
            content,
            library_paths: self.library_paths,
            trace_functions: self.trace_functions,
            otlp,
            resource_defaults,
            spool_dir: self.spool_dir,
            spool_max_bytes: self.spool_max_bytes,
            bare_probes: self.bare_probes,
            program_stats: self.program_stats,
            record: self.record,
        })
    }
}

/// `HOST:PORT`, with HOST an address or a name to look up.
fn resolve_metrics_address(text: &str) -> Result<std::net::SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs as _;
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| ConfigError::MetricsAddress(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn args(list: &[&str]) -> AttachArgs {
        let cli = Cli::try_parse_from(["pytrace", "attach"].iter().chain(list)).unwrap();
        match cli.command {
            Command::Attach(a) => a,
            Command::Run(_) | Command::Replay(_) | Command::Doctor(_) | Command::Node(_) => {
                unreachable!("attach arguments")
            }
        }
    }

    #[test]
    fn chooses_formats_like_the_docs_say() {
        assert_eq!(args(&["--pid", "1"]).validate(true, no_env).unwrap().terminal_format, Format::Pretty);
        assert_eq!(args(&["--pid", "1"]).validate(false, no_env).unwrap().terminal_format, Format::Json);
        let to_file = args(&["--pid", "1", "--format", "json", "--output", "x.jsonl"]).validate(false, no_env).unwrap();
        assert_eq!((to_file.terminal_format, to_file.json_file.is_some()), (Format::Pretty, true));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(
            args(&["--pid", "1", "--duration=-1"]).validate(true, no_env),
            Err(ConfigError::Duration(-1.0))
        ));
        assert!(matches!(
            args(&["--pid", "1", "--capture-limit", "0"]).validate(true, no_env),
            Err(ConfigError::CaptureLimit(0))
        ));
        assert!(matches!(args(&["--pid", "0"]).validate(true, no_env), Err(ConfigError::ZeroPid)));
        assert!(matches!(
            args(&["--pid", "1", "--redact", "x"]).validate(true, no_env),
            Err(ConfigError::ContentFlagsWithoutCapture)
        ));
        assert!(matches!(
            args(&["--pid", "1", "--capture-content", "--redact", "("]).validate(true, no_env),
            Err(ConfigError::Redaction(_))
        ));
        assert!(
            args(&["--pid", "1", "--capture-content", "--redact", "x+"])
                .validate(true, no_env)
                .unwrap()
                .content
                .is_some()
        );
        assert!(args(&["--pid", "1"]).validate(true, no_env).unwrap().content.is_none(), "content is off by default");
        assert!(Cli::try_parse_from(["pytrace", "attach"]).is_err());
        assert!(Cli::try_parse_from(["pytrace", "attach", "--pid", "abc"]).is_err());
        assert!(Cli::try_parse_from(["pytrace", "attach", "--pid", "1", "--trace-function", "a b"]).is_err());
    }

    #[test]
    fn otlp_is_on_with_the_flag_or_the_variables() {
        assert!(args(&["--pid", "1"]).validate(true, no_env).unwrap().otlp.is_none());
        let flag = args(&["--pid", "1", "--otlp-endpoint", "http://c:4317"]).validate(true, no_env).unwrap();
        assert_eq!(flag.otlp.unwrap().traces.url, "http://c:4317");
        let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://env:4317".to_owned());
        assert_eq!(args(&["--pid", "1"]).validate(true, env).unwrap().otlp.unwrap().traces.url, "http://env:4317");
        assert!(matches!(
            args(&["--pid", "1", "--otlp-endpoint", "c:4317"]).validate(true, no_env),
            Err(ConfigError::Otlp(_))
        ));
        assert!(matches!(
            args(&["--pid", "1", "--spool-max-bytes", "100"]).validate(true, no_env),
            Err(ConfigError::SpoolSize(100))
        ));
    }

    #[test]
    fn run_takes_the_command_after_the_separator() {
        let cli = Cli::try_parse_from([
            "pytrace",
            "run",
            "--max-cost",
            "0.5",
            "--allow-host",
            "api.openai.com",
            "--",
            "pytest",
            "-x",
            "--pid",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else { panic!("run") };
        let config = run.validate(false, no_env).unwrap();
        assert_eq!(config.command, ["pytest", "-x", "--pid"], "flags after -- belong to the command");
        assert_eq!(config.budget.max_cost, Some(0.5));
        assert_eq!(config.budget.allow_hosts, ["api.openai.com"]);
        assert!(config.trace.pids.is_empty());
        assert!(Cli::try_parse_from(["pytrace", "run"]).is_err(), "a command is required");
        let Command::Run(bad) = Cli::try_parse_from(["pytrace", "run", "--max-cost=-1", "--", "true"]).unwrap().command
        else {
            panic!("run")
        };
        assert!(matches!(bad.validate(false, no_env), Err(ConfigError::MaxCost(_))));
    }

    #[test]
    fn takes_several_function_patterns() {
        let config = args(&["--pid", "1", "--trace-function", "myapp.agent:*", "--trace-function", "handle"])
            .validate(true, no_env);
        let patterns: Vec<String> = config.unwrap().trace_functions.iter().map(ToString::to_string).collect();
        assert_eq!(patterns, ["myapp.agent:*", "handle"]);
    }
}
