//! The command line itself: version, help, usage errors, finding the configuration.

use crate::util::{barman_command, Run, Scratch};

#[test]
fn version_names_the_barman_version_first() {
    let run = Run::of({
        let mut c = barman_command();
        c.arg("-v");
        c
    });
    let out = run.ok();
    assert_eq!(out.lines().next(), Some("3.17.0"));
    assert!(out.contains("barman-rs"));
}

#[test]
fn help_lists_the_commands() {
    let run = Run::of({
        let mut c = barman_command();
        c.arg("--help");
        c
    });
    let out = run.ok();
    for command in ["list-servers", "show-servers", "diagnose"] {
        assert!(out.contains(command), "{command} missing from help:\n{out}");
    }
    assert!(out.contains("--format"));
}

#[test]
fn unknown_commands_and_options_are_usage_errors() {
    let scratch = Scratch::new("");
    scratch
        .barman(&["frobnicate"])
        .code(2)
        .stderr_has("unrecognized subcommand 'frobnicate'");
    scratch
        .barman(&["--no-such-option", "list-servers"])
        .code(2)
        .stderr_has("unexpected argument '--no-such-option'");
    scratch
        .barman(&["-f", "xml", "list-servers"])
        .code(2)
        .stderr_has("invalid value 'xml'");
    scratch
        .barman(&["show-servers"])
        .code(2)
        .stderr_has("required");
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("barman.conf");
    let run = Run::of({
        let mut c = barman_command();
        c.arg("-c").arg(&missing).arg("list-servers");
        c
    });
    run.code(2)
        .stderr_has(&format!(
            "ERROR: Configuration file '{}' does not exist",
            missing.display()
        ))
        .stderr_has("HINT: ");
}

#[test]
fn barman_config_file_names_the_configuration() {
    let scratch = Scratch::new("[pg]\ndescription = from env\nconninfo = host=x\n");
    let run = Run::of({
        let mut c = barman_command();
        c.env("BARMAN_CONFIG_FILE", scratch.config())
            .arg("list-servers");
        c
    });
    assert!(run.ok().contains("pg - from env"));
}

#[test]
fn without_any_configuration_barman_says_where_it_looked() {
    let scratch = Scratch::empty();
    let run = Run::of({
        let mut c = barman_command();
        c.env("HOME", scratch.path()).arg("list-servers");
        c
    });
    if std::path::Path::new("/etc/barman.conf").exists()
        || std::path::Path::new("/etc/barman/barman.conf").exists()
    {
        // This machine has a system-wide configuration: barman must have used it.
        assert_ne!(
            run.stderr.lines().next(),
            Some("ERROR: Could not find any configuration file at default locations.")
        );
    } else {
        run.code(2)
            .stderr_has("ERROR: Could not find any configuration file at default locations.")
            .stderr_has("~/.barman.conf, /etc/barman.conf, /etc/barman/barman.conf");
    }
}

#[test]
fn no_command_prints_help() {
    let run = Run::of(barman_command());
    assert!(run.ok().contains("Usage: barman"));
}
