mod data_all;
mod data_augment;
mod data_concat;
mod data_export;
mod data_generate;
mod data_merge;
mod data_mine;
mod data_multitask;
mod data_stats;
mod data_synth;
mod data_validate;
mod eval;
mod from_sql;
mod model_info;
mod schema_input;
mod serve;
mod summary;
mod tasks;
mod to_sql;
mod train;
mod verification_run;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{Cli, Command, DataCommand, ModelCommand};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Data(DataCommand::Generate(args)) => data_generate::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Validate(args)) => data_validate::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Augment(args)) => data_augment::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Multitask(args)) => data_multitask::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Mine(args)) => data_mine::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Synth(args)) => data_synth::run(&args, &interrupt_flag()),
        Command::Data(DataCommand::Merge(args)) => data_merge::run(&args),
        Command::Data(DataCommand::Concat(args)) => data_concat::run(&args),
        Command::Data(DataCommand::Stats(args)) => data_stats::run(&args),
        Command::Data(DataCommand::Export(args)) => data_export::run(&args),
        Command::Data(DataCommand::All(args)) => data_all::run(&args, &interrupt_flag()),
        Command::FromSql(args) => from_sql::run(&args),
        Command::ToSql(args) => to_sql::run(&args),
        Command::Eval(args) => eval::run(&args, &interrupt_flag()),
        Command::Train(args) => train::run(
            &args,
            &interrupt_flag_saying("\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to quit now; a re-run resumes)"),
        ),
        Command::Model(ModelCommand::Info(args)) => model_info::run(&args),
        Command::Model(ModelCommand::Convert(args)) => model_info::convert(&args),
        Command::Model(ModelCommand::ConvertAdapter(args)) => model_info::convert_adapter(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Complete(args) => tasks::complete(&args),
        Command::Fix(args) => tasks::fix(&args),
        Command::Qa(args) => tasks::qa(&args),
        Command::Doc(args) => tasks::doc(&args),
        Command::Version(_) => {
            println!("ibert {}", crate::cli::version_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Set by Ctrl-C: long commands stop after the examples in flight and write nothing partial.
fn interrupt_flag() -> Arc<AtomicBool> {
    interrupt_flag_saying("\ninterrupted: finishing the examples in flight, nothing will be written (Ctrl-C again to quit now)")
}

/// The flag, with `message` printed on the first Ctrl-C.
fn interrupt_flag_saying(message: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: stop now. No output file has been renamed into place; the
            // workers see their input close and exit.
            std::process::exit(i32::from(crate::exit::INTERRUPTED));
        }
        eprintln!("{message}");
    });
    flag
}
