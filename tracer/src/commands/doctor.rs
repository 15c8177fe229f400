//! `pytrace doctor`: prints the checks of `crate::checks`, one line each
//! (with `--programs`, then the kernel programs' budget table); exit code 1
//! when tracing cannot work here.

use crate::checks::{self, Check};
use crate::cli::DoctorArgs;

pub fn run(args: &DoctorArgs) -> u8 {
    let (mut checks, budgets): (Vec<Check>, _) = checks::host_checks(args.programs);
    if let Some(pid) = args.pid {
        checks.extend(checks::process_checks(pid));
    }
    for check in &checks {
        println!("{}", check.line());
    }
    if !budgets.is_empty() {
        println!("\n{}", crate::probes::budget::heading());
        for budget in &budgets {
            println!("{}", budget.row());
        }
        println!();
    }
    if checks::can_trace(&checks) {
        println!("pytrace can trace here");
        0
    } else {
        println!("pytrace cannot trace here: change what the FAIL lines say");
        1
    }
}
