fn main() -> std::process::ExitCode {
    gatehouse_cli::main()
}
