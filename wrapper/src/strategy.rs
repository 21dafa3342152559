//! The two ways of rebuilding a unit whose old outputs are read-only symlinks.
//!
//! - [`in_place`]: unlink the symlinks that carry this unit's output names, then `exec` rustc as
//!   if we were not there. rustc writes, streams and pipelines exactly as usual.
//! - [`redirect`]: rustc writes into a temporary out-dir next to the real one; its stderr is
//!   streamed line by line, and each artifact rustc announces is hard-linked into the real out-dir
//!   (atomically replacing the symlink) before the line is forwarded with the real path, so cargo
//!   can start dependents at once (pipelining) while rustc keeps its own name for the file. At exit
//!   all outputs are renamed over the old names and `.d` files get the real out-dir back; if rustc
//!   fails, the old outputs stay (except an `.rmeta` already announced, as without us).
//!
//! docs/wrapper.md says which is the default and why.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use crate::args::{self, Unit, Word};
use crate::plan;
use crate::process::{self, Program};
use crate::Error;

/// Which strategy runs a compile (`NIXCACHE_WRAPPER_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    InPlace,
    Redirect,
}

/// `NIXCACHE_WRAPPER_STRATEGY` holds something else than a strategy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} must be `in-place` or `redirect`, not `{value}`",
    crate::ENV_STRATEGY
)]
pub struct BadStrategy {
    pub value: String,
}

impl Strategy {
    pub const DEFAULT: Strategy = Strategy::InPlace;

    /// Reads the value of `NIXCACHE_WRAPPER_STRATEGY`; unset means [`Strategy::DEFAULT`].
    pub fn from_env(value: Option<&std::ffi::OsStr>) -> Result<Strategy, BadStrategy> {
        match value.map(|v| v.to_str()) {
            None => Ok(Strategy::DEFAULT),
            Some(Some("in-place")) => Ok(Strategy::InPlace),
            Some(Some("redirect")) => Ok(Strategy::Redirect),
            Some(_) => Err(BadStrategy {
                value: value.unwrap_or_default().to_string_lossy().into_owned(),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::InPlace => "in-place",
            Strategy::Redirect => "redirect",
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Unlinks the symlinks in the out-dir that carry this unit's output names. Real files stay:
/// rustc can overwrite those itself.
pub fn remove_own_symlinks(unit: &Unit) -> Result<(), Error> {
    let stem = plan::stem(unit);
    let dir = match std::fs::read_dir(&unit.out_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read directory", &unit.out_dir)(e)),
    };
    for entry in dir {
        let entry = entry.map_err(io_err("read directory", &unit.out_dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if plan::owns_output(&stem, name) && entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(())
}

/// The in-place strategy: returns only on failure to exec.
pub fn in_place(unit: &Unit, program: &Program) -> Error {
    if let Err(e) = remove_own_symlinks(unit) {
        return e;
    }
    Error::Spawn {
        program: program.to_string(),
        source: program.exec(),
    }
}

/// Removes the temporary names of one compile however it ends.
struct TmpNames(Vec<PathBuf>);

impl Drop for TmpNames {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// The redirect strategy; returns rustc's status once its outputs are in place. `tmp` is the
/// unit's temporary out-dir ([`plan::tmp_dir`]).
pub fn redirect(
    unit: &Unit,
    tmp: PathBuf,
    words: &[Word],
    user_wrapper: Option<&std::ffi::OsStr>,
) -> Result<ExitStatus, Error> {
    let link_tmp = with_suffix(&tmp, ".link");
    let argfile_tmp = with_suffix(&tmp, ".args");
    let _cleanup = TmpNames(vec![tmp.clone(), link_tmp.clone(), argfile_tmp.clone()]);
    // A previous run killed with SIGKILL may have left these behind.
    drop(TmpNames(vec![
        tmp.clone(),
        link_tmp.clone(),
        argfile_tmp.clone(),
    ]));
    std::fs::create_dir(&tmp).map_err(io_err("create directory", &tmp))?;

    let argv = materialize(&args::replace_out_dir(words, &tmp), &argfile_tmp)?;
    let program = Program::new(user_wrapper, argv);
    let mut child = program
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })?;
    process::forward_signals_to(child.id());

    let mut reader = BufReader::with_capacity(64 * 1024, child.stderr.take().expect("piped"));
    let mut stderr = std::io::stderr().lock();
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io {
                    op: "read stderr of",
                    path: PathBuf::from(&program.argv[0]),
                    source: e,
                })
            }
        }
        let out: &[u8] = match plan::rewrite_artifact_line(&line, &unit.out_dir) {
            Some(a) => {
                let (src, dst) = (tmp.join(&a.file_name), unit.out_dir.join(&a.file_name));
                if let Err(e) = publish_link(&src, &dst, &link_tmp) {
                    // Forwarding anyway keeps cargo going; the file is moved into place at exit.
                    let _ = writeln!(stderr, "nixcache-rustc-wrapper: warning: {e}");
                }
                line = a.line;
                &line
            }
            None => &line,
        };
        // A closed stderr must not stop us from draining the pipe and finishing rustc's work.
        let _ = stderr.write_all(out);
    }
    drop(stderr);
    let status = child.wait().map_err(|source| Error::Spawn {
        program: program.to_string(),
        source,
    })?;
    if status.success() {
        move_outputs(&tmp, &unit.out_dir)?;
    }
    Ok(status)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Argv for the child: argfiles whose content changed are written to `argfile` (cargo only uses
/// one argfile per call; a second changed one would get `argfile.1`, ...).
fn materialize(words: &[Word], argfile: &Path) -> Result<Vec<OsString>, Error> {
    let mut n = 0;
    words
        .iter()
        .map(|w| match w {
            Word::Arg(a) => Ok(a.clone()),
            Word::File { lines, .. } => {
                let path = if n == 0 {
                    argfile.to_owned()
                } else {
                    with_suffix(argfile, &format!(".{n}"))
                };
                n += 1;
                let mut content = lines.join("\n");
                content.push('\n');
                std::fs::write(&path, content).map_err(io_err("write", &path))?;
                let mut arg = OsString::from("@");
                arg.push(&path);
                Ok(arg)
            }
        })
        .collect()
}

/// Hard-links `src` to `dst` atomically (through `via`): rustc keeps its own name for the file
/// (it re-opens the `.rmeta` after announcing it) and readers of `dst` see the new file at once.
fn publish_link(src: &Path, dst: &Path, via: &Path) -> Result<(), Error> {
    let _ = std::fs::remove_file(via);
    std::fs::hard_link(src, via).map_err(io_err("hard-link", src))?;
    std::fs::rename(via, dst).map_err(io_err("rename into place", dst))
}

/// Renames everything rustc wrote over the old names; `.d` files are rewritten first.
fn move_outputs(tmp: &Path, out_dir: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(tmp).map_err(io_err("read directory", tmp))? {
        let entry = entry.map_err(io_err("read directory", tmp))?;
        let (src, dst) = (entry.path(), out_dir.join(entry.file_name()));
        if entry.file_name().as_bytes().ends_with(b".d") {
            let content = std::fs::read(&src).map_err(io_err("read", &src))?;
            let fixed = plan::rewrite_dep_info(&content, tmp, out_dir);
            if fixed != content {
                std::fs::write(&src, fixed).map_err(io_err("write", &src))?;
            }
        }
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && dst.symlink_metadata().is_ok_and(|m| m.is_dir())
        {
            std::fs::remove_dir_all(&dst).map_err(io_err("remove", &dst))?;
        }
        std::fs::rename(&src, &dst).map_err(io_err("rename into place", &dst))?;
    }
    Ok(())
}
