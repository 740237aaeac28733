//! Remote recovery over a real SSH connection: the test starts Debian's `sshd` on a
//! free port of 127.0.0.1, with its own host key and an authorized key for the server's
//! OS user, and `barman restore --remote-ssh-command` sends the backup and the WAL
//! through it. The recovered cluster is started and its rows counted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, give_tree_to_server_user, run_live, PgInstall};
use crate::live::recover_fixture::{start_recovered, Fixture};

const SSHD: &str = "/usr/sbin/sshd";

/// An `sshd` serving one user by key; stopped when dropped.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    user: String,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} not found: install Debian's openssh-server (scripts/test does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let keygen = |file: &Path| {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .status()
                .expect("run ssh-keygen");
            assert!(status.success(), "ssh-keygen -f {}", file.display());
        };
        let host_key = dir.join("host_key");
        let key = dir.join("client_key");
        keygen(&host_key);
        keygen(&key);
        let authorized = dir.join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644)).unwrap();
        let user = nix::unistd::User::from_uid(crate::harness::server_user().uid)
            .unwrap()
            .expect("the server's OS user")
            .name;
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = dir.join("sshd_config");
        // UsePAM: without it sshd refuses accounts whose password is locked ('!' in
        // /etc/shadow), as Debian's postgres account is; keys still do the authentication.
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nStrictModes no\nUsePAM yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {user}\n",
                host_key.display(),
                dir.join("sshd.pid").display(),
                authorized.display()
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd {
            child,
            port,
            key,
            user,
        };
        sshd.wait_ready(dir);
        sshd
    }

    /// The `ssh` command line that logs in as the server's user.
    fn command(&self) -> String {
        format!(
            "ssh -p {} -i {} -o BatchMode=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR {}@127.0.0.1",
            self.port,
            self.key.display(),
            self.user
        )
    }

    fn wait_ready(&mut self, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "sshd exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                );
            }
            let probe = Command::new("sh")
                .arg("-c")
                .arg(format!("{} true", self.command()))
                .output()
                .unwrap();
            if probe.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cannot log in through sshd: {}\n{}",
                String::from_utf8_lossy(&probe.stderr),
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn remote_restore_over_ssh_pg15() {
    run_live(15, |pg: &PgInstall| {
        let f = Fixture::new(pg);
        f.rows_around_restore_point(" tablespace tbs");

        let sshd = Sshd::start(&f.path("ssh"));
        // The "remote host" writes as the server's user, into a directory it owns.
        let remote = f.path("remote");
        std::fs::create_dir_all(&remote).unwrap();
        give_tree_to_server_user(&remote);
        let dest = remote.join("data");
        let tbs = format!("tbs:{}", remote.join("tbs").display());
        let ssh_command = sshd.command();
        let out = f
            .restore(&[
                "--remote-ssh-command",
                &ssh_command,
                "--target-name",
                "rp",
                "--target-action",
                "promote",
                "--tablespace",
                &tbs,
                "-j",
                "2",
                "latest",
                dest.to_str().unwrap(),
            ])
            .ok()
            .to_string();
        assert!(
            out.contains("Starting remote restore for server pg using backup 20260101T000000"),
            "{out}"
        );
        assert!(
            out.contains(&format!("Remote command: {ssh_command}")),
            "{out}"
        );
        // Everything on the remote side belongs to the user SSH logged in as.
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&dest).unwrap());
        assert_eq!(owner, crate::harness::server_user().uid.as_raw());
        assert!(dest.join("recovery.signal").is_file());
        assert!(dest.join("barman_wal").is_dir());
        let recovered = start_recovered(pg, &dest);
        assert_eq!(recovered.psql("select count(*) from t"), "150");
        drop(recovered);

        // A destination the remote user cannot write: a clear error, non-zero.
        let run = f.restore(&[
            "--remote-ssh-command",
            &ssh_command,
            "--tablespace",
            &format!("tbs:{}", remote.join("tbs2").display()),
            "latest",
            "/root/forbidden/data",
        ]);
        assert_ne!(run.code, 0, "{}", run.stdout);
        assert!(
            run.stderr.contains("/root/forbidden/data"),
            "{}",
            run.stderr
        );
    });
}
