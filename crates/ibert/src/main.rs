//! `ibert`: verified SQL<->Ibis datasets and tasks for code models of the Ibis dataframe language.
//!
//! Arguments are parsed in `cli` (what the user typed, no I/O), then each command in `commands`
//! builds what it needs (oracle pool, verifier) and runs.

mod cli;
mod commands;
mod oracle_setup;
mod ui;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let matches = cli::Cli::command().version(cli::version_text()).long_version(cli::version_text()).get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
