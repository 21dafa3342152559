//! Making "read-only" mean read-only even for root.
//!
//! Inside a Nix build the store is read-only and the builder has no capabilities, so a stray
//! write through a symlink into the store fails. Tests often run as root, and root's
//! `CAP_DAC_OVERRIDE` ignores permission bits: a test that only `chmod a-w`s a file would pass
//! even if the code under test wrote to it. So commands that must not be able to write go through
//! [`unprivileged_command`], which drops every capability with util-linux `setpriv`:
//!
//! ```text
//! setpriv --inh-caps=-all --bounding-set=-all -- <program> <args>
//! ```
//!
//! An empty bounding set means the exec'd program (and its children: cargo, rustc, build
//! scripts) gains no capabilities even as uid 0. The uid stays 0, so files root owns remain
//! writable through their owner bits; only the capability override is gone.
//!
//! Without any effective capability (a normal user, a Nix sandbox) the program runs directly:
//! there is nothing to drop, and dropping the bounding set would itself need `CAP_SETPCAP`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Whether this process has any effective capability (`CapEff` in `/proc/self/status`),
/// i.e. whether permission bits alone may fail to stop its writes.
pub fn has_capabilities() -> bool {
    let status = fs::read_to_string("/proc/self/status").expect("read `/proc/self/status`");
    let cap_eff = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .expect("`CapEff:` line in `/proc/self/status`");
    u64::from_str_radix(cap_eff.trim(), 16).expect("CapEff is hex") != 0
}

/// A `Command` that runs `program` with no capabilities: through `setpriv` when this process
/// has any, directly otherwise. Add arguments, environment and directory as usual.
pub fn unprivileged_command(program: impl AsRef<OsStr>) -> Command {
    if has_capabilities() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--inh-caps=-all", "--bounding-set=-all", "--"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// `chmod -R a-w path`, not following symlinks (their own mode means nothing on Linux).
pub fn make_read_only(path: impl AsRef<Path>) {
    let path = path.as_ref();
    // chmod needs no write permission on the parent, so the order of the walk does not matter.
    for entry in walk(path) {
        let entry = entry.unwrap_or_else(|e| panic!("walk `{}`: {e}", path.display()));
        if !entry.file_type().is_symlink() {
            set_mode_bits(entry.path(), |mode| mode & !0o222)
                .unwrap_or_else(|e| panic!("chmod a-w `{}`: {e}", entry.path().display()));
        }
    }
}

/// `chmod -R u+w path`, undoing [`make_read_only`] for the owner.
pub fn make_writable(path: impl AsRef<Path>) {
    let path = path.as_ref();
    try_make_writable(path).unwrap_or_else(|e| panic!("chmod -R u+w `{}`: {e}", path.display()));
}

/// [`make_writable`] that reports the first error instead of panicking (for `Drop`).
pub(crate) fn try_make_writable(path: &Path) -> io::Result<()> {
    for entry in walk(path) {
        let entry = entry.map_err(io::Error::from)?;
        if !entry.file_type().is_symlink() {
            set_mode_bits(entry.path(), |mode| mode | 0o200)?;
        }
    }
    Ok(())
}

fn walk(path: &Path) -> walkdir::WalkDir {
    walkdir::WalkDir::new(path).follow_links(false)
}

fn set_mode_bits(path: &Path, change: impl FnOnce(u32) -> u32) -> io::Result<()> {
    let mode = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    fs::set_permissions(path, fs::Permissions::from_mode(change(mode)))
}
