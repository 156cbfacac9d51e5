fn main() -> std::process::ExitCode {
    binclass::cli::main()
}
