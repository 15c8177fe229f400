//! The documentation's event ABI table (`docs/architecture.md`, the `kind`
//! row) names every event kind `tracer-common` declares, with its number,
//! and no other: the kinds' names come from the one declaration
//! (`event_kinds!`), so a new kind the table forgets fails here.

use tracer_common::EventKind;

use crate::shell::workspace_root;

/// The `kind` row of the ABI table.
fn kind_row(document: &str) -> Option<&str> {
    document.lines().find(|line| line.starts_with("| `kind` |"))
}

/// The `N `Name`` pairs a row lists.
fn listed_kinds(row: &str) -> Vec<(u32, String)> {
    let mut kinds = Vec::new();
    let mut rest = row;
    while let Some(tick) = rest.find(" `") {
        let number: String =
            rest[..tick].chars().rev().take_while(char::is_ascii_digit).collect::<Vec<_>>().into_iter().rev().collect();
        let after = &rest[tick + 2..];
        let Some(end) = after.find('`') else { break };
        if let Ok(number) = number.parse() {
            kinds.push((number, after[..end].to_owned()));
        }
        rest = &after[end + 1..];
    }
    kinds
}

#[test]
fn the_abi_table_lists_every_event_kind() {
    let document = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).expect("architecture.md");
    let row = kind_row(&document).expect("the ABI table's `kind` row");
    let declared: Vec<(u32, String)> =
        EventKind::ALL.iter().map(|&kind| (kind as u32, kind.name().to_owned())).collect();
    assert_eq!(listed_kinds(row), declared, "docs/architecture.md's ABI table and tracer-common's EventKind differ");
}

#[test]
fn a_row_is_read_as_numbered_names() {
    let row = "| `kind` | u32 | 1 `TlsData`, 2 `TlsClosed` (the end), 13 `ProcessMapped` (`a note`) |";
    let names: Vec<(u32, String)> = listed_kinds(row);
    assert_eq!(names, [(1, "TlsData".into()), (2, "TlsClosed".into()), (13, "ProcessMapped".into())]);
}
