//! The comparison as text, Markdown or CSV.

use std::fmt::Write as _;

use super::{Format, Groups, Row, Verdict};

fn pm((m, s): (f64, f64)) -> String {
    format!("{m:.4} ± {s:.4}")
}

fn seeds(n: usize, diverged: usize) -> String {
    if diverged == 0 {
        n.to_string()
    } else {
        format!("{n}+{diverged} diverged")
    }
}

/// The table's columns, as `--format csv`'s header reads.
const HEAD: &str = "preset,seeds ours/keras,ours trained with,final ours,final keras,best ours,best keras,final diff [90% CI],perm. p (Holm),failed ours/keras (Holm p),curve gap,epochs in Keras ±sd,seeds needed for ±δ,verdict";

/// The article's statements' columns.
const CLAIM_HEAD: &str = "preset,ours trained with,the article says,keras,ours";

fn cells(r: &Row) -> Vec<String> {
    let j = &r.judged;
    let (lo, hi) = j.interval;
    vec![
        r.preset.clone(),
        format!(
            "{}/{}",
            seeds(r.n_ours, r.diverged_ours),
            seeds(r.n_keras, r.diverged_keras)
        ),
        r.optimizer.clone(),
        pm(r.final_ours),
        pm(r.final_keras),
        pm(r.best_ours),
        pm(r.best_keras),
        format!("{:+.4} [{lo:+.4}, {hi:+.4}]", j.diff),
        format!("{:.3}", j.p_mean),
        format!("{}/{} ({:.3})", j.failed.0, j.failed.1, j.p_failed),
        format!("{:.4}", r.gap),
        format!("{:.0}%", r.in_sd * 100.0),
        if r.verdict == Verdict::Inconclusive {
            format!("{} {}", r.need.seeds, r.need.side)
        } else {
            "-".to_string()
        },
        format!("{:?}", r.verdict).to_lowercase(),
    ]
}

fn claim_cells(r: &Row) -> Option<Vec<String>> {
    let (what, (kh, kv), (oh, ov)) = r.claim.as_ref()?;
    let mark = |h: &bool, v: &str| format!("{} ({v})", if *h { "holds" } else { "does not hold" });
    Some(vec![
        r.preset.clone(),
        r.optimizer.clone(),
        what.to_string(),
        mark(kh, kv),
        mark(oh, ov),
    ])
}

fn markdown(out: &mut String, head: &str, rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", head.replace(',', " | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.split(',').count()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

fn text(out: &mut String, head: &str, rows: &[Vec<String>]) {
    let head: Vec<String> = head.split(',').map(String::from).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&head).chain(rows).collect();
    let mut widths = vec![0; head.len()];
    for (c, cell) in all.iter().flat_map(|r| r.iter().enumerate()) {
        widths[c] = widths[c].max(cell.chars().count());
    }
    for r in all {
        let padded: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    }
    out.push('\n');
}

/// The comparison table and the article's statements (CSV: the table only).
pub fn render(rows: &[Row], format: Format) -> anyhow::Result<String> {
    if rows.is_empty() {
        return Ok(String::new());
    }
    let table_rows: Vec<Vec<String>> = rows.iter().map(cells).collect();
    if format == Format::Csv {
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record(HEAD.split(','))?;
        for r in &table_rows {
            w.write_record(r)?;
        }
        return Ok(String::from_utf8(
            w.into_inner().map_err(|e| e.into_error())?,
        )?);
    }
    let claims: Vec<Vec<String>> = rows.iter().filter_map(claim_cells).collect();
    let markdown_wanted = format == Format::Markdown;
    let table = if markdown_wanted { markdown } else { text };
    let mut out = String::new();
    table(&mut out, HEAD, &table_rows);
    if !claims.is_empty() {
        table(&mut out, CLAIM_HEAD, &claims);
    }
    Ok(out)
}

fn seed_count(n: usize) -> String {
    format!("{n} seed{}", if n == 1 { "" } else { "s" })
}

/// One line per group of runs found: what it is and how many seeds.
pub fn render_found(with_ref: &Groups, without: &Groups) -> Vec<String> {
    let with = with_ref.iter().map(|g| (g, ""));
    with.chain(without.iter().map(|g| (g, ", no Keras reference")))
        .map(|(((_, label, optimizer), runs), tag)| {
            format!("{label}, {optimizer}: {}{tag}", seed_count(runs.len()))
        })
        .collect()
}

/// What each inconclusive preset needs, in words.
pub fn explain(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.verdict == Verdict::Inconclusive)
        .map(|r| {
            let n = &r.need;
            let (seeds, have) = match n.side {
                "Keras" => (format!("{} Keras seeds beside our {}", n.seeds, r.n_ours), r.n_keras),
                "ours" => (format!("{} of our seeds beside Keras's {}", n.seeds, r.n_keras), r.n_ours),
                _ => (format!("{} seeds a side", n.seeds), r.n_ours.min(r.n_keras)),
            };
            let hint = if n.seeds > have as u64 {
                String::new()
            } else if r.judged.diff.abs() >= r.margin / 2.0 {
                format!(
                    "; there are already that many, so the observed difference ({:+.4}) itself is too near ±{}",
                    r.judged.diff, r.margin
                )
            } else {
                "; there are already that many: the runs' outcomes are skewed or lumped, which widens the bootstrap interval beyond what their sd predicts".into()
            };
            format!(
                "{} ({}): inconclusive at {}/{} seeds; about {seeds} would show equivalence within \
                 ±{} with 80% power if the true difference is 0 (sd {:.4}, {}){hint}",
                r.preset, r.optimizer, r.n_ours, r.n_keras, r.margin, n.sd, n.sd_from,
            )
        })
        .collect()
}
