//! Running as `barman_user`, as Barman does: started as root, barman switches to that
//! user (its groups and `HOME` too) before it touches the catalogue; started as any
//! other user, it refuses to run, so that files in `barman_home` never end up with
//! mixed owners.

use std::ffi::CString;

use nix::unistd::{getuid, initgroups, setgid, setuid, User};

use crate::error::UsageError;

/// Become `name`, or explain why barman cannot run as the current user.
pub fn switch_to(name: &str, config_file: &std::path::Path) -> Result<(), UsageError> {
    let user = User::from_name(name).ok().flatten().ok_or_else(|| {
        UsageError::new(
            format!("the configured user '{name}' does not exist"),
            format!(
                "create the OS user '{name}' or set barman_user in the [barman] section of {}",
                config_file.display()
            ),
        )
    })?;
    let current = getuid();
    if user.uid == current {
        return Ok(());
    }
    if !current.is_root() {
        let me = User::from_uid(current)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| current.to_string());
        return Err(UsageError::new(
            format!("please run barman as '{name}' user (not as '{me}')"),
            format!(
                "run it as that user (e.g. sudo -u {name} barman ...), or set barman_user in the [barman] section of {}",
                config_file.display()
            ),
        ));
    }
    let c_name = CString::new(name).map_err(|_| {
        UsageError::new(
            format!("the configured user '{name}' is not a valid user name"),
            "fix barman_user in the [barman] section",
        )
    })?;
    let switch = || -> nix::Result<()> {
        initgroups(&c_name, user.gid)?;
        setgid(user.gid)?;
        setuid(user.uid)
    };
    switch().map_err(|e| {
        UsageError::new(
            format!("cannot switch from root to user '{name}': {}", e.desc()),
            "check that the user exists and that barman may change its identity",
        )
    })?;
    // Single-threaded at this point: nothing else reads the environment concurrently.
    std::env::set_var("HOME", &user.dir);
    Ok(())
}
