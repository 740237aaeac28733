//! Where restored files go: a local directory, or a remote host reached with
//! `--remote-ssh-command`, where each stream of files is a `tar` archive piped into
//! `tar -x` over SSH (no local staging). Files are written under *roots*: the data
//! directory, each tablespace location, the WAL directory.
//!
//! Every relative path is checked before use ([`safe_relative`]): no absolute paths, no
//! `..`, and locally no write through a symbolic link, so a hostile backup cannot write
//! outside the destination.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::throttle::Throttle;

/// A destination host.
pub trait Destination: Send + Sync {
    /// Whether `dir` is missing or empty.
    fn is_empty_dir(&self, dir: &Path) -> Result<bool>;
    /// Open a writer of entries below `root` (created when missing).
    fn writer(&self, root: &Path) -> Result<Box<dyn EntryWriter>>;
    /// Whether files already in `root` may be kept (delta restore): the relative paths of
    /// the regular files there with their size and mtime.
    fn existing_files(&self, root: &Path) -> Result<Vec<(PathBuf, u64, i64)>>;
    /// Remove a file or a directory tree below `root` (delta restore).
    fn remove(&self, root: &Path, rel: &Path) -> Result<()>;
    /// `local` or `remote`.
    fn kind(&self) -> &'static str;
}

/// Writes entries under one root.
pub trait EntryWriter: Send {
    /// A directory.
    fn dir(&mut self, rel: &Path, mode: u32) -> Result<()>;
    /// A regular file, copied from a local file.
    fn file_from_path(
        &mut self,
        rel: &Path,
        src: &Path,
        mode: u32,
        size: u64,
        mtime: i64,
    ) -> Result<()>;
    /// A regular file of `size` bytes read from `reader`.
    fn file_from_reader(
        &mut self,
        rel: &Path,
        mode: u32,
        size: u64,
        mtime: i64,
        reader: &mut dyn Read,
    ) -> Result<()>;
    /// A symbolic link.
    fn symlink(&mut self, rel: &Path, target: &Path) -> Result<()>;
    /// Flush and wait for the writer to complete.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Check a path taken from a backup: relative, made only of normal components.
pub fn safe_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => bail!(
                "refusing the path '{}' from the backup: it is absolute or leaves its directory",
                path.display()
            ),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("refusing an empty path from the backup");
    }
    Ok(out)
}

/// Quote a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The local file system.
pub struct Local {
    /// Shared bandwidth limit.
    pub throttle: Option<Arc<Throttle>>,
}

impl Destination for Local {
    fn is_empty_dir(&self, dir: &Path) -> Result<bool> {
        match fs::read_dir(dir) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e).with_context(|| format!("list {}", dir.display())),
        }
    }

    fn writer(&self, root: &Path) -> Result<Box<dyn EntryWriter>> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("create directory {}", root.display()))?;
        Ok(Box::new(LocalWriter {
            root: root.to_path_buf(),
            known_dirs: HashSet::new(),
            throttle: self.throttle.clone(),
        }))
    }

    fn existing_files(&self, root: &Path) -> Result<Vec<(PathBuf, u64, i64)>> {
        let mut found = Vec::new();
        walk_files(root, Path::new(""), &mut found)?;
        Ok(found)
    }

    fn remove(&self, root: &Path, rel: &Path) -> Result<()> {
        let path = root.join(safe_relative(rel)?);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        };
        if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .with_context(|| format!("remove {}", path.display()))
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

fn walk_files(root: &Path, rel: &Path, found: &mut Vec<(PathBuf, u64, i64)>) -> Result<()> {
    let dir = root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let meta = entry.metadata()?;
        let child = rel.join(entry.file_name());
        if meta.is_dir() {
            walk_files(root, &child, found)?;
        } else if meta.is_file() {
            use std::os::unix::fs::MetadataExt;
            found.push((child, meta.len(), meta.mtime()));
        }
    }
    Ok(())
}

struct LocalWriter {
    root: PathBuf,
    known_dirs: HashSet<PathBuf>,
    throttle: Option<Arc<Throttle>>,
}

impl LocalWriter {
    /// The absolute path of `rel`, after making sure its parents are real directories
    /// (never symbolic links) below the root, creating the missing ones.
    fn place(&mut self, rel: &Path) -> Result<PathBuf> {
        let rel = safe_relative(rel)?;
        let mut dir = PathBuf::new();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                dir.push(c);
                if self.known_dirs.contains(&dir) {
                    continue;
                }
                let path = self.root.join(&dir);
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => bail!(
                        "refusing to write below {}: it is not a directory (a symbolic link from the backup?)",
                        path.display()
                    ),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::DirBuilder::new()
                            .mode(0o700)
                            .create(&path)
                            .with_context(|| format!("create directory {}", path.display()))?;
                    }
                    Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
                }
                self.known_dirs.insert(dir.clone());
            }
        }
        Ok(self.root.join(rel))
    }

    fn remove_existing(path: &Path) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => bail!("{} is a directory", path.display()),
            Ok(_) => fs::remove_file(path).with_context(|| format!("remove {}", path.display())),
            Err(_) => Ok(()),
        }
    }
}

fn set_mtime(path: &Path, mtime: i64) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(mtime, 0);
    let _ = utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink);
}

impl EntryWriter for LocalWriter {
    fn dir(&mut self, rel: &Path, mode: u32) -> Result<()> {
        let path = self.place(rel)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", path.display()),
            Err(_) => fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .with_context(|| format!("create directory {}", path.display()))?,
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777 | 0o700))
            .with_context(|| format!("chmod {}", path.display()))?;
        self.known_dirs.insert(safe_relative(rel)?);
        Ok(())
    }

    fn file_from_path(
        &mut self,
        rel: &Path,
        src: &Path,
        mode: u32,
        size: u64,
        mtime: i64,
    ) -> Result<()> {
        let path = self.place(rel)?;
        Self::remove_existing(&path)?;
        match &self.throttle {
            None => {
                fs::copy(src, &path)
                    .with_context(|| format!("copy {} to {}", src.display(), path.display()))?;
            }
            Some(_) => {
                let mut input =
                    File::open(src).with_context(|| format!("open {}", src.display()))?;
                return self.file_from_reader(rel, mode, size, mtime, &mut input);
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
            .with_context(|| format!("chmod {}", path.display()))?;
        set_mtime(&path, mtime);
        Ok(())
    }

    fn file_from_reader(
        &mut self,
        rel: &Path,
        mode: u32,
        _size: u64,
        mtime: i64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let path = self.place(rel)?;
        Self::remove_existing(&path)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        copy_throttled(reader, &mut file, self.throttle.as_deref())
            .with_context(|| format!("write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
            .with_context(|| format!("chmod {}", path.display()))?;
        set_mtime(&path, mtime);
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> Result<()> {
        let path = self.place(rel)?;
        Self::remove_existing(&path)?;
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("symlink {} to {}", path.display(), target.display()))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Copy with an optional bandwidth limit; returns the bytes copied.
pub fn copy_throttled(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    throttle: Option<&Throttle>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
        if let Some(t) = throttle {
            t.consume(n as u64);
        }
    }
    Ok(total)
}

/// A remote host reached with `--remote-ssh-command`.
pub struct Remote {
    /// The SSH command, e.g. `ssh postgres@pg1`.
    pub ssh_command: String,
    /// Shared bandwidth limit.
    pub throttle: Option<Arc<Throttle>>,
}

impl Remote {
    /// A command running `script` on the remote host.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{} {}", self.ssh_command, shell_quote(script)));
        cmd
    }

    /// Run `script` remotely; its standard output.
    pub fn run(&self, script: &str) -> Result<String> {
        let output = self
            .command(script)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", self.ssh_command))?;
        if !output.status.success() {
            bail!(
                "the remote command failed ({}): {} {}",
                output.status,
                script,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Destination for Remote {
    fn is_empty_dir(&self, dir: &Path) -> Result<bool> {
        let d = shell_quote(&dir.to_string_lossy());
        let out = self.run(&format!(
            "if [ ! -e {d} ] || [ -z \"$(ls -A {d})\" ]; then echo empty; else echo full; fi"
        ))?;
        Ok(out.trim() == "empty")
    }

    fn writer(&self, root: &Path) -> Result<Box<dyn EntryWriter>> {
        let r = shell_quote(&root.to_string_lossy());
        let mut child = self
            .command(&format!(
                "mkdir -p {r} && chmod 700 {r} && exec tar -x -f - -C {r} -p"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("run {}", self.ssh_command))?;
        let stdin = child.stdin.take().expect("stdin was piped");
        Ok(Box::new(RemoteWriter {
            builder: Some(tar::Builder::new(ThrottledPipe {
                pipe: stdin,
                throttle: self.throttle.clone(),
            })),
            child,
            root: root.to_path_buf(),
        }))
    }

    fn existing_files(&self, root: &Path) -> Result<Vec<(PathBuf, u64, i64)>> {
        let r = shell_quote(&root.to_string_lossy());
        let out = self.run(&format!(
            "[ -d {r} ] && cd {r} && find . -type f -printf '%s %T@ %P\\n' || true"
        ))?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ' ');
                let size = parts.next()?.parse().ok()?;
                let mtime = parts.next()?.split('.').next()?.parse().ok()?;
                Some((PathBuf::from(parts.next()?), size, mtime))
            })
            .collect())
    }

    fn remove(&self, root: &Path, rel: &Path) -> Result<()> {
        let path = root.join(safe_relative(rel)?);
        self.run(&format!("rm -rf {}", shell_quote(&path.to_string_lossy())))?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "remote"
    }
}

struct ThrottledPipe {
    pipe: ChildStdin,
    throttle: Option<Arc<Throttle>>,
}

impl Write for ThrottledPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.pipe.write(buf)?;
        if let Some(t) = &self.throttle {
            t.consume(n as u64);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.pipe.flush()
    }
}

struct RemoteWriter {
    builder: Option<tar::Builder<ThrottledPipe>>,
    child: Child,
    root: PathBuf,
}

impl RemoteWriter {
    fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: i64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_size(size);
        h.set_mtime(mtime.max(0) as u64);
        h
    }

    fn builder(&mut self) -> &mut tar::Builder<ThrottledPipe> {
        self.builder.as_mut().expect("the writer is not finished")
    }
}

impl EntryWriter for RemoteWriter {
    fn dir(&mut self, rel: &Path, mode: u32) -> Result<()> {
        let rel = safe_relative(rel)?;
        let mut h = Self::header(tar::EntryType::Directory, mode | 0o700, 0, 0);
        self.builder()
            .append_data(&mut h, &rel, io::empty())
            .with_context(|| format!("send directory {}", rel.display()))
    }

    fn file_from_path(
        &mut self,
        rel: &Path,
        src: &Path,
        mode: u32,
        size: u64,
        mtime: i64,
    ) -> Result<()> {
        let mut input = File::open(src).with_context(|| format!("open {}", src.display()))?;
        self.file_from_reader(rel, mode, size, mtime, &mut input)
    }

    fn file_from_reader(
        &mut self,
        rel: &Path,
        mode: u32,
        size: u64,
        mtime: i64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let rel = safe_relative(rel)?;
        let mut h = Self::header(tar::EntryType::Regular, mode, size, mtime);
        // Exactly `size` bytes, so that a file growing meanwhile cannot break the stream.
        let mut limited = reader.take(size);
        self.builder()
            .append_data(&mut h, &rel, &mut limited)
            .with_context(|| format!("send {} to the remote host", rel.display()))
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> Result<()> {
        let rel = safe_relative(rel)?;
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0);
        self.builder()
            .append_link(&mut h, &rel, target)
            .with_context(|| format!("send symlink {}", rel.display()))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let builder = self.builder.take().expect("finish is called once");
        let pipe = builder
            .into_inner()
            .context("finish the tar stream to the remote host")?;
        drop(pipe);
        let status = self.child.wait().context("wait for the remote tar")?;
        if !status.success() {
            bail!(
                "the remote tar extracting into {} failed ({status})",
                self.root.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_backups_must_stay_inside() {
        assert_eq!(
            safe_relative(Path::new("./base/1/123")).unwrap(),
            PathBuf::from("base/1/123")
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", ""] {
            assert!(safe_relative(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_writes_never_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("dest");
        let local = Local { throttle: None };
        let mut w = local.writer(&root).unwrap();
        w.symlink(Path::new("escape"), outside.path()).unwrap();
        let err = w
            .file_from_reader(Path::new("escape/owned"), 0o600, 1, 0, &mut &b"x"[..])
            .unwrap_err();
        assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
        assert!(!outside.path().join("owned").exists());
        w.file_from_reader(Path::new("a/b/c"), 0o600, 1, 0, &mut &b"x"[..])
            .unwrap();
        assert_eq!(fs::read(root.join("a/b/c")).unwrap(), b"x");
    }

    #[test]
    fn words_are_quoted_for_the_remote_shell() {
        assert_eq!(shell_quote("/srv/pg data"), "'/srv/pg data'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("/srv/pg"), "/srv/pg");
    }
}
