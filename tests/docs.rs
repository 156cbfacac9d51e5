//! Every `binclass` command README.md and docs/ show runs as shown, from a
//! copy of the repository's files (so that one writing into docs/ changes
//! nothing here), in each document's order (a later command may read what
//! an earlier one wrote). A command still running after [`LIMIT`] has passed
//! every check it makes before training, and is stopped there; one the
//! document shows failing (its output, on the next line, starts with
//! `error:`) must fail. Not run: synopses (`[…]`, `…`, placeholders such as
//! `DIR`), bare command names in prose, commands for a GPU, and blocks
//! marked `<!-- docs-test: skip … -->` (the mark says why, and which test
//! replays them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_binclass");
/// A command still running this long has passed every check it makes
/// before writing (a second at most, even on a busy machine) and is
/// training: it runs as shown. Longer only costs the suite time.
const LIMIT: Duration = Duration::from_secs(6);

/// A command a document shows, and whether it shows it failing.
struct Shown {
    line: String,
    fails: bool,
}

fn is_synopsis_or_name(cmd: &str) -> bool {
    // DIR, NAME, RUN.csv, A..B: a word that starts with a capital.
    let placeholder = cmd
        .split_whitespace()
        .any(|w| w.starts_with(|c: char| c.is_ascii_uppercase()));
    cmd.contains(['[', ']', '…', '|', '<', '>', '&', '$'])
        || cmd.contains("...")
        || placeholder
        || cmd.contains(" M ")
        || cmd.ends_with(" M")
        || cmd.contains("cuda")
        || cmd.split_whitespace().count() < 3 && !cmd.contains("--")
}

/// The `binclass` commands of one markdown document, in order.
fn commands(text: &str) -> Vec<Shown> {
    let mut found = vec![];
    let mut lines = text.lines().peekable();
    let mut skip_next_block = false;
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("<!-- docs-test: skip") {
            skip_next_block = true;
            continue;
        }
        if line.trim_start().starts_with("```") {
            let mut block: Vec<&str> = vec![];
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                block.push(l);
            }
            if std::mem::take(&mut skip_next_block) {
                continue;
            }
            for (i, l) in block.iter().enumerate() {
                let cmd = l.trim().trim_start_matches("$ ");
                if cmd.starts_with("binclass ") && !is_synopsis_or_name(cmd) {
                    let next = block.get(i + 1).map_or("", |n| n.trim());
                    found.push(Shown {
                        line: cmd.to_string(),
                        fails: next.starts_with("error:"),
                    });
                }
            }
            continue;
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 1 && span.starts_with("binclass ") && !is_synopsis_or_name(span) {
                found.push(Shown {
                    line: span.to_string(),
                    fails: false,
                });
            }
        }
    }
    found
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Runs `cmd` (shell words, no quoting in the docs' commands) in `dir`:
/// `Some(success)`, or `None` when it was still running at the limit.
fn run(dir: &Path, cmd: &str) -> (Option<bool>, String) {
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let mut child = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (Some(status.success()), err);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return (None, String::new());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_command_the_docs_show_runs_as_shown() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    let (mut failures, mut ran, mut stopped) = (vec![], 0, 0);
    for doc in &docs {
        let tmp = tempfile::tempdir().unwrap();
        for part in ["docs", "reference", "tests/fixtures", "scripts"] {
            copy_dir(&root.join(part), &tmp.path().join(part));
        }
        for shown in commands(&std::fs::read_to_string(doc).unwrap()) {
            let (done, err) = run(tmp.path(), &shown.line);
            ran += 1;
            match done {
                None => stopped += 1,
                Some(ok) if ok != shown.fails => {}
                Some(_) => failures.push(format!(
                    "{}: `{}` {}: {}",
                    doc.strip_prefix(root).unwrap().display(),
                    shown.line,
                    if shown.fails {
                        "succeeded, shown failing"
                    } else {
                        "failed"
                    },
                    err.trim()
                )),
            }
        }
    }
    eprintln!("{ran} commands run, {stopped} stopped at {LIMIT:?} with every check passed");
    assert!(ran > 10, "too few commands found: {ran}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn synopses_and_command_names_are_not_taken_for_commands() {
    let shown = commands(
        "`binclass train` trains; `binclass sweep --seeds A..B` is a synopsis;\n\
         `binclass compare docs/reproduction` runs.\n\
         <!-- docs-test: skip: needs a kill -->\n```\n$ binclass resume run.csv\n```\n\
         ```\n$ binclass resume done.csv --verbose 0\nerror: finished\n```\n",
    );
    let lines: Vec<(&str, bool)> = shown.iter().map(|s| (s.line.as_str(), s.fails)).collect();
    assert_eq!(
        lines,
        [
            ("binclass compare docs/reproduction", false),
            ("binclass resume done.csv --verbose 0", true)
        ]
    );
}
