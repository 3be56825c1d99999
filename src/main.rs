//! The `concur` binary: parse the command line, run it through the library, exit.

use clap::Parser;

fn main() -> std::process::ExitCode {
    concur::cli::run(concur::cli::Cli::try_parse())
}
