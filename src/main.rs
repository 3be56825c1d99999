//! The `concur` binary: everything lives in the library; see `concur::cli`.

fn main() -> std::process::ExitCode {
    concur::cli::main()
}
