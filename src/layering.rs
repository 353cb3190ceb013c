//! The layering the design promises, checked on the source: imports between the crate's
//! top-level modules run one way (layers → ops → kernels → device layer), with no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module a file belongs to (`src/ops/conv.rs` → `ops`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The text of `text` outside `#[cfg(test)] mod ... { ... }` blocks and comments.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // A test module with a body is skipped to its closing brace; `mod x;` lines go too.
        match (after.find('{'), after.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            (_, Some(semi)) => rest = &after[semi + 1..],
            _ => rest = "",
        }
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source tree") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module → the modules it names through `crate::`.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in all {
        let name = file.file_name().expect("a file").to_string_lossy();
        let from = module_of(src, &file);
        if from == "lib" || from == "testing" || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = without_tests(&std::fs::read_to_string(&file).expect("readable"));
        for (at, _) in text.match_indices("crate::") {
            let to: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if to != from && modules.contains(&to) && to != "testing" {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// A module reachable from itself, if any, with the path that closes the loop.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        let here = path.last().expect("non-empty").clone();
        for next in graph.get(&here).into_iter().flatten() {
            if let Some(start) = path.iter().position(|m| m == next) {
                let mut cycle = path[start..].to_vec();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if done.contains(next) {
                continue;
            }
            path.push(next.clone());
            if let Some(c) = walk(graph, path, done) {
                return Some(c);
            }
            path.pop();
        }
        done.insert(here);
        None
    }
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        if let Some(c) = walk(graph, &mut vec![start.clone()], &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    // The device layer knows no kernel and no op; kernels know no op or layer.
    let below = |m: &str, forbidden: &[&str]| {
        for f in forbidden {
            assert!(
                !graph.get(m).is_some_and(|s| s.contains(*f)),
                "`{m}` imports `{f}`: imports run layers -> ops -> kernels -> gpu"
            );
        }
    };
    below(
        "gpu",
        &["kernels", "ops", "tensor", "nn", "optim", "recurrent"],
    );
    below("kernels", &["ops", "nn", "optim", "recurrent"]);
    below("tensor", &["ops", "kernels", "nn", "optim", "recurrent"]);
    below("ops", &["nn", "optim", "recurrent"]);
}

#[test]
fn a_cycle_is_found() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    g.remove("c");
    assert_eq!(find_cycle(&g), None);
    let text =
        "use crate::ops;\n#[cfg(test)]\nmod tests {\n    use crate::nn;\n}\n// crate::optim\n";
    let kept = without_tests(text);
    assert!(kept.contains("crate::ops") && !kept.contains("crate::nn") && !kept.contains("optim"));
}
