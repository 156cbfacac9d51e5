//! ARCHITECTURE.md's import rule, checked against the source: each row of
//! its diagram imports only from the rows below it, `cli/` on top of all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The diagram's modules and their rows, counted from the bottom (1).
fn ranks() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let diagram = doc
        .split("```")
        .nth(1)
        .expect("ARCHITECTURE.md has a diagram");
    let rows: Vec<&str> = diagram.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut ranks = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        // The names, then two spaces or more, then what the row holds.
        let names = row.trim().split("  ").next().unwrap();
        for name in names.split('·').map(str::trim) {
            assert!(
                ranks.insert(name.to_string(), rows.len() - i).is_none(),
                "{name} is on two rows of the diagram"
            );
        }
    }
    ranks
}

/// A file's code without its comments and its `#[cfg(test)]` module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names through `crate::`, in paths and in
/// `use crate::{a, b::c}` groups.
fn imports(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(ident(item.trim()));
        } else {
            found.insert(ident(rest));
        }
    }
    found.remove("");
    found
}

/// Every source file and the module it belongs to: a folder's files are
/// their folder's (`compare/render.rs` is `compare`).
fn modules() -> Vec<(String, std::path::PathBuf)> {
    let mut out = vec![];
    let mut stack = vec![Path::new(ROOT).join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(Path::new(ROOT).join("src")).unwrap();
                let first = rel.components().next().unwrap().as_os_str();
                let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
                out.push((module, p));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn each_row_of_the_architecture_imports_only_from_the_rows_below_it() {
    let ranks = ranks();
    let mut wrong = vec![];
    for (module, path) in modules() {
        if ["main", "lib", "cli", "shim"].contains(&module.as_str()) {
            continue;
        }
        let Some(&rank) = ranks.get(&module) else {
            wrong.push(format!("{module} is not in ARCHITECTURE.md's diagram"));
            continue;
        };
        for import in imports(&code(&path)) {
            if import == module {
                continue;
            }
            match ranks.get(&import) {
                Some(&r) if r < rank => {}
                Some(_) => wrong.push(format!(
                    "{} imports {import}, which is not on a row below {module}'s",
                    path.display()
                )),
                None => wrong.push(format!(
                    "{} imports {import}, which is not in the diagram",
                    path.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_module_of_the_crate_is_in_the_architecture_and_none_else() {
    let ranks = ranks();
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .filter(|m| m != "cli")
        .collect();
    let drawn: BTreeSet<String> = ranks.keys().cloned().collect();
    assert_eq!(declared, drawn);
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let code = "use crate::config::{A, B};\nuse crate::{fit::{C, D}, layout, stats::x as y};\nlet z = crate::shard::parse(s);";
    let found: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(found, ["config", "fit", "layout", "shard", "stats"]);
}
