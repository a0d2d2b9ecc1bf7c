//! `ibert`: verified SQL<->Ibis datasets and tasks for code models of the Ibis dataframe language.
//!
//! Arguments are parsed in `cli` (what the user typed, no I/O), then each command in `commands`
//! builds what it needs (oracle pool, verifier) and runs.

mod cli;
mod commands;
mod exit;
mod model_config;
mod oracle_setup;
mod ui;
mod user_data;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let command = cli::Cli::command().version(cli::version_text()).long_version(cli::version_text());
    // Argument errors exit with 1, like every other error: 2 and 3 mean an unverified and a
    // rejected answer (see `exit`).
    let parsed = command.try_get_matches().and_then(|matches| cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { exit::ERROR } else { exit::SUCCESS });
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", render_error(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: library errors often already name their source.
fn render_error(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
