//! `pytrace run`'s reports: the figures of a run — totals, per-model table,
//! per-served-route table, slowest calls, errors, budget checks and calls to hosts not allowed —
//! computed once from the spans (pure), then rendered as JSON, Markdown
//! (`markdown`) and a self-contained HTML page (`html`).

pub mod html;
pub mod markdown;

use pytrace_core::model::{Span, SpanKind, Status, semconv as sc};
use serde::Serialize;

use crate::sinks::summary::{ModelStats, RouteStats, Summary};
use crate::stats::Stats;

/// Exit code when the LLM calls exceeded `--max-cost`, `--max-tokens` or `--max-llm-calls`.
pub const EXIT_BUDGET_EXCEEDED: u8 = 70;
/// Exit code when the command called a host outside `--allow-host`.
pub const EXIT_HOST_NOT_ALLOWED: u8 = 71;

/// Calls listed as the slowest.
const SLOWEST: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub command: Vec<String>,
    /// The command's exit code (128 + signal when a signal ended it).
    pub exit_code: i32,
    pub totals: Totals,
    pub models: Vec<ModelStats>,
    /// Served routes whose requests made LLM calls: which endpoint spends the tokens.
    pub routes: Vec<RouteStats>,
    pub slowest: Vec<Call>,
    pub errors: Vec<Call>,
    pub budget: Vec<BudgetCheck>,
    pub host_violations: Vec<Call>,
    pub counters: Stats,
}

/// Limits a `run` must stay within.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    pub max_cost: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_llm_calls: Option<u64>,
    /// Empty: any host.
    pub allow_hosts: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub processes: usize,
    pub http_calls: u64,
    pub llm_calls: u64,
    pub llm_errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tokens_estimated: bool,
    pub cost_usd: f64,
}

/// One call as the reports list it.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub name: String,
    pub url: String,
    pub host: String,
    pub status_code: Option<i64>,
    pub duration_s: f64,
    pub pid: i64,
    pub model: Option<String>,
    pub function: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetCheck {
    pub limit_name: &'static str,
    pub limit: f64,
    pub actual: f64,
    pub exceeded: bool,
}

impl RunReport {
    pub fn build(
        command: &[String],
        exit_code: i32,
        spans: &[Span],
        summary: &Summary,
        stats: &Stats,
        budget: &Budget,
    ) -> Self {
        let calls: Vec<&Span> = spans.iter().filter(|s| s.kind != SpanKind::Internal).collect();
        let models = summary.model_stats();
        let mut totals = Totals { http_calls: calls.len() as u64, ..Totals::default() };
        let mut pids: Vec<i64> = spans.iter().filter_map(|s| s.resource.attributes.int(sc::PROCESS_PID)).collect();
        pids.sort_unstable();
        pids.dedup();
        totals.processes = pids.len();
        for model in &models {
            totals.llm_calls += model.calls;
            totals.llm_errors += model.errors;
            totals.input_tokens += model.input_tokens;
            totals.output_tokens += model.output_tokens;
            totals.tokens_estimated |= model.tokens_estimated;
            totals.cost_usd += model.cost.unwrap_or(0.0);
        }
        let mut slowest: Vec<&Span> = calls.clone();
        slowest.sort_by_key(|s| std::cmp::Reverse(s.duration_ns()));
        let listed: Vec<(&Span, Call)> = calls.iter().map(|s| (*s, call(s))).collect();
        let check = |limit_name, limit: Option<f64>, actual: f64| {
            limit.map(|limit| BudgetCheck { limit_name, limit, actual, exceeded: actual > limit })
        };
        let budget_checks = [
            check("max_cost_usd", budget.max_cost, totals.cost_usd),
            check(
                "max_tokens",
                budget.max_tokens.map(|n| n as f64),
                (totals.input_tokens + totals.output_tokens) as f64,
            ),
            check("max_llm_calls", budget.max_llm_calls.map(|n| n as f64), totals.llm_calls as f64),
        ];
        let allowed = |host: &str| {
            budget.allow_hosts.is_empty()
                || budget.allow_hosts.iter().any(|pattern| wildmatch::WildMatch::new(pattern).matches(host))
        };
        Self {
            // Secrets passed on the command line never reach a report.
            command: pytrace_core::redact::redact_command_args(command),
            exit_code,
            models,
            routes: summary.spending_routes().cloned().collect(),
            slowest: slowest.iter().take(SLOWEST).map(|s| call(s)).collect(),
            errors: listed
                .iter()
                .filter(|(s, _)| matches!(s.status, Status::Error { .. }))
                .map(|(_, c)| c.clone())
                .collect(),
            host_violations: listed
                .iter()
                .filter(|(s, c)| s.kind == SpanKind::Client && !allowed(&c.host))
                .map(|(_, c)| c.clone())
                .collect(),
            budget: budget_checks.into_iter().flatten().collect(),
            totals,
            counters: stats.clone(),
        }
    }

    pub fn budget_exceeded(&self) -> bool {
        self.budget.iter().any(|check| check.exceeded)
    }

    /// pytrace's exit code: the command's when it failed; else 70 for an
    /// exceeded budget, 71 for a host not allowed; else 0.
    pub fn exit_code(&self) -> u8 {
        if self.exit_code != 0 {
            return u8::try_from(self.exit_code).unwrap_or(1);
        }
        if self.budget_exceeded() {
            EXIT_BUDGET_EXCEEDED
        } else if !self.host_violations.is_empty() {
            EXIT_HOST_NOT_ALLOWED
        } else {
            0
        }
    }

    /// One line per problem, for stderr.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for check in self.budget.iter().filter(|c| c.exceeded) {
            lines.push(format!("budget exceeded: {} is {} (limit {})", check.limit_name, check.actual, check.limit));
        }
        for call in &self.host_violations {
            lines.push(format!("host not allowed: {} {} (PID {})", call.name, call.url, call.pid));
        }
        lines
    }
}

fn call(span: &Span) -> Call {
    let a = &span.attributes;
    let text = |key| a.str(key).map(str::to_owned);
    Call {
        name: span.name.clone(),
        url: text(sc::URL_FULL).or_else(|| text(sc::URL_PATH)).unwrap_or_default(),
        host: text(sc::SERVER_ADDRESS).unwrap_or_default(),
        status_code: a.int(sc::HTTP_RESPONSE_STATUS_CODE),
        duration_s: span.duration_ns() as f64 / 1e9,
        pid: span.resource.attributes.int(sc::PROCESS_PID).unwrap_or(0),
        model: text(sc::GEN_AI_REQUEST_MODEL),
        function: text(sc::CODE_FUNCTION_NAME),
        error: match &span.status {
            Status::Error { message } => Some(message.clone().or_else(|| text(sc::ERROR_TYPE)).unwrap_or_default()),
            _ => None,
        },
    }
}
