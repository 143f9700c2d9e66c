//! The `sekisho` binary: see the library (`sekisho_cli`) for the commands.

fn main() {
    std::process::exit(sekisho_cli::run(std::env::args().skip(1).collect()));
}
