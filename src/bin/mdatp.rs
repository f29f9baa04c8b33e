fn main() {
    std::process::exit(mdatp::cli::main());
}
