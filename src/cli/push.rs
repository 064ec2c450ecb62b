//! `berth image push NAME[:TAG]`: the stored image of that name to the
//! registry its name points at, with docker's progress lines.

use std::process::ExitCode;

use crate::image::registry::{Progress, ProgressMode, Pusher};
use crate::store::Root;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Print only the pushed image's name.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The image, named `registry/repository[:tag]` (see `berth image tag`).
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

pub fn run(root: &Root, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let pusher = Pusher::new(root)?;
    let progress = Progress::new(ProgressMode::detect(args.quiet));
    pusher.push(&args.image, &args.image, &progress)?;
    Ok(ExitCode::SUCCESS)
}
