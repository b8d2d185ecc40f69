fn main() -> std::process::ExitCode {
    lakehouse::cli::main()
}
