//! `binclass merge`: shards' folders joined into the folder the unsharded
//! command would have written.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Replace;
use crate::merge::Merge;
use crate::outputs;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The folders of every shard of one command (`--shard K/N`), any order.
    #[arg(required = true, value_name = "DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged folder: the files the unsharded command writes.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub replace: Replace,
}

pub fn run(args: &MergeArgs) -> Result<()> {
    let merge = Merge::plan(&args.shards, &args.out, args.replace.overwrite)?;
    let files = merge.write()?;
    outputs::note(&format!(
        "merged {} shards of {} into {} ({files} files)",
        merge.shards,
        merge.command,
        merge.out.display()
    ));
    Ok(())
}
