//! Running the next program: `exec` for pass-through, spawn + wait for the redirect strategy, with
//! signals forwarded to the child and the child's death reproduced on ourselves, so cargo sees
//! exactly what it would have seen from rustc. Inherited file descriptors (cargo's jobserver) stay
//! open: std only marks the descriptors it creates itself close-on-exec.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

/// The program line we run: the user's wrapper (if any) in front of cargo's words.
#[derive(Debug, Clone)]
pub struct Program {
    pub argv: Vec<OsString>,
}

impl Program {
    /// `user_wrapper` goes first, like cargo would have put it first.
    pub fn new(user_wrapper: Option<&OsStr>, words: Vec<OsString>) -> Program {
        let argv = user_wrapper
            .map(OsStr::to_owned)
            .into_iter()
            .chain(words)
            .collect();
        Program { argv }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        cmd
    }

    /// Replaces this process; returns only on failure.
    pub fn exec(&self) -> std::io::Error {
        self.command().exec()
    }
}

/// Copy-pasteable, like cargo's `ProcessBuilder`: `` `rustc --crate-name 'a b'` ``.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for (i, a) in self.argv.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&shell_quote(a))?;
        }
        f.write_str("`")
    }
}

/// Quotes a word for POSIX sh only when needed (also used for `cargo nixcache env` exports).
pub fn shell_quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// From now on SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to us go to `pid` instead of killing us before
/// we could clean up; the child's own death by the signal is then reproduced by [`exit_like`].
pub fn forward_signals_to(pid: u32) {
    CHILD.store(pid as i32, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls kill(2); sigaction is zero-initialisable.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Ends this process the way the child ended: same exit code, or death by the same signal.
pub fn exit_like(status: ExitStatus) -> ! {
    if let Some(sig) = status.signal() {
        // SAFETY: restoring the default action and re-raising; plain libc calls.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_copy_pasteable() {
        let p = Program::new(
            Some(OsStr::new("/w/sccache")),
            vec!["rustc".into(), "a b".into(), "it's".into()],
        );
        assert_eq!(p.to_string(), r"`/w/sccache rustc 'a b' 'it'\''s'`");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }
}
