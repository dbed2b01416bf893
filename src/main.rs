fn main() -> std::process::ExitCode {
    boundstate::cli::run()
}
