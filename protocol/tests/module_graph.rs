//! The modules of `protocol/src` import one another without a circle (DESIGN §10).
//!
//! Reads every source file, takes the top-level module each `crate::<module>` path in
//! its non-test code names, and looks for a cycle in that graph. Comments, inline
//! `#[cfg(test)] mod tests { … }` blocks and `tests.rs` files are left out: tests may
//! reach anywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `module → modules it names`, over non-test code.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        // An inline test module ends the file by convention (`mod tests;` in a file
        // of its own is skipped above, as `tests.rs`).
        let code = text
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .expect("some text");
        let deps = graph.entry(module.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(m) = stack.pop() {
        for next in graph.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(
        graph.contains_key("leader") && graph.contains_key("config"),
        "{graph:?}"
    );
    let circles: Vec<(String, String)> = graph
        .iter()
        .flat_map(|(m, deps)| deps.iter().map(move |d| (m.clone(), d.clone())))
        .filter(|(m, d)| reaches(&graph, d, m))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:?}");
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let mut graph = graph();
    // config → leader closes a circle (leader → config).
    graph
        .get_mut("config")
        .expect("config")
        .insert("leader".into());
    assert!(reaches(&graph, "leader", "config") && reaches(&graph, "config", "leader"));
}
