//! `pytrace doctor`: prints the checks of `crate::doctor`, one line each
//! (with `--programs`, then the kernel programs' budget table); exit code 1
//! when tracing cannot work here.

use crate::cli::DoctorArgs;
use crate::doctor::{self, Check};

pub fn run(args: &DoctorArgs) -> u8 {
    let (mut checks, budgets): (Vec<Check>, _) = doctor::host_checks(args.programs);
    if let Some(pid) = args.pid {
        checks.extend(doctor::process_checks(pid));
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
    if doctor::can_trace(&checks) {
        println!("pytrace can trace here");
        0
    } else {
        println!("pytrace cannot trace here: change what the FAIL lines say");
        1
    }
}
