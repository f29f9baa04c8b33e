fn main() {
    std::process::exit(mdatp::daemon::main());
}
