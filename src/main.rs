//! The `barman` binary: everything happens in [`barman::run`].

fn main() -> std::process::ExitCode {
    let status = barman::run(
        std::env::args_os().collect(),
        Box::new(barman::output::StdSink),
    );
    status.into()
}
