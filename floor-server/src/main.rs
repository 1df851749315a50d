fn main() -> std::process::ExitCode {
    floor_server::cli::main()
}
