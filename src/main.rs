//! The `concur` binary: parse the command line, run it through the library, exit.

fn main() -> std::process::ExitCode {
    concur::stdio::guard();
    concur::cli::main()
}
