//! Bad configurations: each gets a clear error naming the file, section and key,
//! exit code 2, and changes nothing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use nix::unistd::Uid;

use crate::util::{barman_command, current_user, Run, Scratch};

const PG: &str = "[pg]\nconninfo = host=pg\nbackup_method = postgres\nstreaming_archiver = on\nslot_name = barman\n";

#[test]
fn unknown_server_is_a_usage_error() {
    let scratch = Scratch::new(PG);
    let run = scratch.barman(&["show-servers", "nope"]);
    run.code(2).stderr_has("ERROR: Unknown server 'nope'");
    // the known server is still shown
    let run = scratch.barman(&["show-servers", "nope", "pg"]);
    run.code(2);
    assert!(run.stdout.starts_with("Server pg:\n"), "{}", run.stdout);
}

#[test]
fn all_cannot_be_mixed_with_server_names() {
    let scratch = Scratch::new(PG);
    scratch
        .barman(&["show-servers", "all", "pg"])
        .code(2)
        .stderr_has("You cannot use 'all' with other server names");
}

#[test]
fn duplicate_server_sections_name_both_places() {
    let scratch = Scratch::new(PG);
    let conf_d = scratch.path().join("conf.d");
    scratch.write("conf.d/pg.conf", "\n[pg]\nconninfo = host=other\n");
    let mut text = std::fs::read_to_string(scratch.config()).unwrap();
    text = text.replacen(
        "[barman]\n",
        &format!(
            "[barman]\nconfiguration_files_directory = {}\n",
            conf_d.display()
        ),
        1,
    );
    scratch.write_config(&text);
    let run = scratch.barman(&["list-servers"]);
    run.code(2)
        .stderr_has("ERROR: duplicate server section [pg]: ")
        .stderr_has(&format!("{}, line 7", scratch.config().display()))
        .stderr_has(&format!("{}, line 2", conf_d.join("pg.conf").display()))
        .stderr_has("HINT: ");
}

#[test]
fn a_malformed_retention_policy_names_file_section_line_and_key() {
    let scratch = Scratch::new(&format!("{PG}retention_policy = REDUNDANCY two\n"));
    let run = scratch.barman(&["list-servers"]);
    run.code(2).stderr_has(&format!(
        "ERROR: invalid value 'REDUNDANCY two' for retention_policy ([pg] in {}, line 11): not a retention policy (use 'REDUNDANCY n' or 'RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS')",
        scratch.config().display()
    ));
    assert!(run.stdout.is_empty());
}

#[test]
fn a_malformed_size_names_file_section_line_and_key() {
    let scratch = Scratch::new(&format!("{PG}last_backup_minimum_size = 10 GB\n"));
    scratch.barman(&["show-servers", "pg"]).code(2).stderr_has(&format!(
        "ERROR: invalid value '10 GB' for last_backup_minimum_size ([pg] in {}, line 11): unknown size suffix 'GB'",
        scratch.config().display()
    ));
}

#[test]
fn an_inline_comment_makes_a_value_invalid() {
    let scratch = Scratch::new(&format!("{PG}compression = gzip # fast\n"));
    scratch
        .barman(&["list-servers"])
        .code(2)
        .stderr_has("invalid value 'gzip # fast' for compression");
}

#[test]
fn a_line_that_is_not_an_option_is_a_syntax_error_with_its_line() {
    let scratch = Scratch::new(&format!("{PG}this is not an option\n"));
    scratch.barman(&["list-servers"]).code(2).stderr_has(&format!(
        "ERROR: cannot parse configuration file {}, line 11: cannot parse 'this is not an option': expected 'option = value'",
        scratch.config().display()
    ));
}

#[test]
fn barman_home_is_required() {
    let scratch = Scratch::empty();
    scratch.write_config(&format!("[barman]\nbarman_user = {}\n{PG}", current_user()));
    scratch
        .barman(&["list-servers"])
        .code(2)
        .stderr_has("ERROR: Parameter \"barman_home\" is required in [barman] section");
}

#[test]
fn a_configuration_directory_that_is_a_file_is_an_error() {
    let scratch = Scratch::new(PG);
    let file = scratch.write("not-a-dir", "");
    let text = std::fs::read_to_string(scratch.config()).unwrap().replacen(
        "[barman]\n",
        &format!(
            "[barman]\nconfiguration_files_directory = {}\n",
            file.display()
        ),
        1,
    );
    scratch.write_config(&text);
    scratch
        .barman(&["list-servers"])
        .code(2)
        .stderr_has(&format!(
            "ERROR: configuration_files_directory '{}' is not a directory",
            file.display()
        ));
}

#[test]
fn a_missing_configuration_directory_only_warns() {
    let scratch = Scratch::new(PG);
    let missing = scratch.path().join("no-such-dir/barman.d");
    let text = std::fs::read_to_string(scratch.config()).unwrap().replacen(
        "[barman]\n",
        &format!(
            "[barman]\nconfiguration_files_directory = {}\n",
            missing.display()
        ),
        1,
    );
    scratch.write_config(&text);
    let run = scratch.barman(&["list-servers"]);
    run.code(0).stderr_has(&format!(
        "WARNING: Ignoring the \"configuration_files_directory\" option as \"{}\" is not a directory",
        missing.display()
    ));
}

#[test]
fn servers_sharing_a_directory_stop_server_commands() {
    let scratch = Scratch::new(&format!(
        "{PG}wals_directory = /srv/shared\n[pg2]\nconninfo = host=pg2\nbackup_method = postgres\narchiver = on\nwals_directory = /srv/shared\n"
    ));
    scratch
        .barman(&["list-servers"])
        .code(2)
        .stderr_has("ERROR: Conflicting path: wals_directory=/srv/shared for server 'pg2' conflicts with 'wals_directory' for server 'pg'");
}

#[test]
fn a_barman_user_that_does_not_exist_is_refused() {
    let scratch = Scratch::new(PG);
    let text = std::fs::read_to_string(scratch.config()).unwrap().replace(
        &format!("barman_user = {}\n", current_user()),
        "barman_user = no_such_user_42\n",
    );
    scratch.write_config(&text);
    scratch
        .barman(&["list-servers"])
        .code(2)
        .stderr_has("ERROR: the configured user 'no_such_user_42' does not exist");
}

/// Make the scratch directory readable by other users (the postgres OS user).
fn open_up(scratch: &Scratch) {
    for path in [scratch.path().to_path_buf(), scratch.config()] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `barman ARGS` run as the `postgres` OS user (the tests run as root here).
fn barman_as_postgres(scratch: &Scratch, args: &[&str]) -> Run {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", env!("CARGO_BIN_EXE_barman"), "-c"])
        .arg(scratch.config())
        .args(args)
        .env_remove("BARMAN_CONFIG_FILE");
    Run::of(cmd)
}

#[test]
fn another_user_is_refused() {
    let scratch = Scratch::new(PG);
    if Uid::current().is_root() {
        // barman_user is root: running as postgres must be refused.
        open_up(&scratch);
        barman_as_postgres(&scratch, &["list-servers"])
            .code(2)
            .stderr_has("ERROR: please run barman as 'root' user (not as 'postgres')")
            .stderr_has("HINT: run it as that user");
    } else {
        let text = std::fs::read_to_string(scratch.config()).unwrap().replace(
            &format!("barman_user = {}\n", current_user()),
            "barman_user = root\n",
        );
        scratch.write_config(&text);
        Run::of({
            let mut c = barman_command();
            c.arg("-c").arg(scratch.config()).arg("list-servers");
            c
        })
        .code(2)
        .stderr_has("ERROR: please run barman as 'root' user");
    }
}

#[test]
fn root_switches_to_barman_user_before_writing_anything() {
    if !Uid::current().is_root() {
        // Only root can switch users; as another user the refusal is tested above.
        let scratch = Scratch::new(PG);
        assert!(scratch.barman(&["list-servers"]).ok().contains("pg"));
        return;
    }
    let scratch = Scratch::new(PG);
    let text = std::fs::read_to_string(scratch.config())
        .unwrap()
        .replace("barman_user = root\n", "barman_user = postgres\n");
    scratch.write_config(&text);
    open_up(&scratch);
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = scratch.barman(&["list-servers"]);
    assert!(run.ok().contains("pg"));
    let log = std::fs::metadata(scratch.log_file()).expect("the log file was created");
    let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    assert_eq!(
        log.uid(),
        postgres.uid.as_raw(),
        "the log file must belong to barman_user"
    );
}

#[test]
fn an_unreadable_configuration_directory_is_an_error() {
    let scratch = Scratch::new(PG);
    let conf_d = scratch.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::set_permissions(&conf_d, std::fs::Permissions::from_mode(0o000)).unwrap();
    let text = std::fs::read_to_string(scratch.config()).unwrap().replacen(
        "[barman]\n",
        &format!(
            "[barman]\nconfiguration_files_directory = {}\n",
            conf_d.display()
        ),
        1,
    );
    let run = if Uid::current().is_root() {
        // root reads anything: run as postgres, which owns barman_home here.
        scratch.write_config(&text.replace("barman_user = root\n", "barman_user = postgres\n"));
        open_up(&scratch);
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        barman_as_postgres(&scratch, &["list-servers"])
    } else {
        scratch.write_config(&text);
        scratch.barman(&["list-servers"])
    };
    std::fs::set_permissions(&conf_d, std::fs::Permissions::from_mode(0o755)).unwrap();
    run.code(2).stderr_has(&format!(
        "ERROR: cannot read configuration_files_directory '{}': Permission denied",
        conf_d.display()
    ));
}
