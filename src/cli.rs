//! The command line: clap definitions (their doc comments are the help text) and one function
//! per subcommand, each a thin call into the library plus a summary line.

use crate::error::{Done, Error};
use crate::output::{bytes, elapsed, print_json, print_stdout};
use crate::wrapping::wrapper_env_here;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use nixcache::archive::Compression;
use nixcache::builddir::BuildDir;
use nixcache::store::StoreDir;
use nixcache::{explain, freshen, hydrate, pack, refs, unpack, verify, workspace};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Inherit cargo target dirs across Nix derivations in O(files).
#[derive(Parser)]
#[command(name = "cargo-nixcache", bin_name = "cargo nixcache", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    leading: Leading,
    #[command(subcommand)]
    command: Command,
}

/// The options some commands take, given before the command name (`cargo nixcache --json
/// pack`). Each is handed to the command if it takes it, and refused if it does not: an option
/// is never accepted and then ignored. (clap's `global` options would be accepted everywhere.)
#[derive(Args)]
struct Leading {
    /// The Nix store directory, for pack, unpack, hydrate, refs, verify and freshen [default:
    /// $NIX_STORE, else $NIX_STORE_DIR, else /nix/store]
    #[arg(long, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// Print no summary line (pack, unpack, hydrate, verify, freshen, explain)
    #[arg(short, long)]
    quiet: bool,
    /// Print the result as JSON on stdout (pack, unpack, hydrate, refs, verify, freshen, env,
    /// explain)
    #[arg(long)]
    json: bool,
}

/// `--store-dir`, for the commands that read or write store paths.
#[derive(Args)]
pub struct StoreArg {
    /// The Nix store directory [default: $NIX_STORE, else $NIX_STORE_DIR, else /nix/store]
    #[arg(long, value_name = "DIR")]
    store_dir: Option<PathBuf>,
}

impl StoreArg {
    pub fn store(&self) -> Result<StoreDir> {
        Ok(StoreDir::resolve(self.store_dir.as_deref())?)
    }

    fn take_from(&mut self, leading: &mut Option<PathBuf>) {
        if let Some(dir) = leading.take() {
            self.store_dir.get_or_insert(dir);
        }
    }
}

/// `-q` and `--json`, for the commands that print a summary line.
#[derive(Args)]
pub struct ReportArgs {
    /// Print no summary line
    #[arg(short, long)]
    quiet: bool,
    /// Print the result as JSON on stdout instead of the summary line
    #[arg(long)]
    json: bool,
}

impl ReportArgs {
    fn take_from(&mut self, quiet: &mut bool, json: &mut bool) {
        self.quiet |= std::mem::take(quiet);
        self.json |= std::mem::take(json);
    }

    /// Prints the summary line (stderr) or the JSON report (stdout).
    fn report(&self, line: impl FnOnce() -> String, json: &impl serde::Serialize) -> Result<()> {
        if self.json {
            print_json(json)?;
        } else if !self.quiet {
            eprintln!("{}", line());
        }
        Ok(())
    }
}

/// `--json`, for the commands with a JSON form of their output but no summary line.
#[derive(Args)]
pub struct JsonArg {
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

impl JsonArg {
    fn take_from(&mut self, json: &mut bool) {
        self.json |= std::mem::take(json);
    }
}

/// Parses the command line. `Err` is clap's usage error (also for an option given before a
/// command that does not take it), or the help or version text clap returns as one.
pub fn parse(args: Vec<OsString>) -> Result<Command, clap::Error> {
    let mut cli_command = Cli::command();
    let matches = cli_command.clone().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cli_command))?;
    let name = matches.subcommand_name().unwrap_or_default().to_owned();
    cli.hand_over_leading().map_err(|option| {
        cli_command.error(
            ErrorKind::ArgumentConflict,
            format!(
                "`{option}` does not apply to `cargo nixcache {name}`; \
                 `cargo nixcache {name} --help` lists what it takes"
            ),
        )
    })
}

impl Cli {
    /// The command with the leading options handed to it; `Err` names one it does not take.
    fn hand_over_leading(self) -> Result<Command, &'static str> {
        let Leading {
            mut store_dir,
            mut quiet,
            mut json,
        } = self.leading;
        let mut command = self.command;
        match &mut command {
            Command::Pack(PackArgs { store, report, .. })
            | Command::Unpack(UnpackArgs { store, report, .. })
            | Command::Hydrate(UnpackArgs { store, report, .. })
            | Command::Verify(VerifyArgs { store, report, .. })
            | Command::Freshen(FreshenArgs { store, report, .. }) => {
                store.take_from(&mut store_dir);
                report.take_from(&mut quiet, &mut json);
            }
            Command::Refs(args) => {
                args.store.take_from(&mut store_dir);
                args.json.take_from(&mut json);
            }
            Command::Env(args) => args.json.take_from(&mut json),
            Command::Explain(args) => args.report.take_from(&mut quiet, &mut json),
            Command::Exec(_) | Command::Demo(_) => {}
        }
        match (store_dir, quiet, json) {
            (Some(_), _, _) => Err("--store-dir"),
            (_, true, _) => Err("--quiet"),
            (_, _, true) => Err("--json"),
            _ => Ok(command),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Pack a target dir into an artifacts directory ($out): symlinks.tar, GC anchor, moved artifacts
    Pack(PackArgs),
    /// Restore a target dir from artifacts (ours, or crane's target.tar.zst chain or target/ dir)
    Unpack(UnpackArgs),
    /// List the store paths referenced by files; fail on forbidden ones
    Refs(RefsArgs),
    /// Check that every archived symlink resolves and every store path is anchored
    Verify(VerifyArgs),
    /// Print shell exports that put nixcache-rustc-wrapper in front of rustc, chaining the
    /// project's own rustc wrapper (eval "$(cargo nixcache env)"); --json prints them as JSON
    Env(EnvArgs),
    /// Run a command (e.g. cargo build) with the environment `env` prints
    Exec(ExecArgs),
    /// Give the own files of every local package whose sources differ from the inherited ones a
    /// fresh mtime, so inherited fingerprints built from other sources cannot make cargo skip it
    Freshen(FreshenArgs),
    /// Fill a dev shell's target dir from a deps output: when it is empty, or was filled from
    /// other artifacts and not built in since; never over a build of the user's own
    Hydrate(UnpackArgs),
    /// Run the whole cycle on the bundled example workspace and print a timing table
    Demo(crate::demo::DemoArgs),
    /// Run a cargo command (or read its log) and say why each unit that was not Fresh was
    /// rebuilt: a newer file, an env var, rustflags, features, profile, a missing output...
    Explain(ExplainArgs),
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  cargo nixcache explain -- build --release\n  \
    CARGO_LOG=cargo::core::compiler::fingerprint=info cargo build --message-format json \
    >build.log 2>&1; cargo nixcache explain --log build.log"
)]
pub struct ExplainArgs {
    /// Read a saved log instead of running cargo (`-`: standard input): cargo's stderr with
    /// CARGO_LOG=cargo::core::compiler::fingerprint=info, and optionally its stdout with
    /// --message-format json, in one file
    #[arg(long, value_name = "FILE", conflicts_with = "cargo_args")]
    pub log: Option<PathBuf>,
    /// The cargo command to run and explain (after `--`), e.g. `build --release`; its output
    /// is passed through, and JSON messages are asked for when the subcommand compiles
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CARGO_ARGS",
        required_unless_present = "log"
    )]
    pub cargo_args: Vec<OsString>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args)]
pub struct EnvArgs {
    /// A `--config` value the later cargo command will get (for build.rustc-wrapper); repeatable
    #[arg(long, value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Args)]
pub struct ExecArgs {
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[derive(Args)]
pub struct FreshenArgs {
    /// The artifacts the target dir was unpacked from: packages whose sources have the digest
    /// recorded there keep their mtimes [default: none, every local package is freshened]
    #[arg(long, value_name = "ARTIFACTS")]
    pub inherited: Option<PathBuf>,
    /// The workspace manifest [default: found from the current directory, as cargo does]
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    // Never walked into (nor is any directory holding CACHEDIR.TAG).
    #[command(flatten)]
    pub dirs: DirArgs,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args)]
pub struct DirArgs {
    /// The cargo target dir
    #[arg(
        long,
        env = "CARGO_TARGET_DIR",
        default_value = "target",
        value_name = "DIR"
    )]
    pub target_dir: PathBuf,
    /// A separate cargo build dir (build.build-dir) [default: as cargo resolves it from its
    /// config files, asked through `cargo metadata`]
    #[arg(long, env = "CARGO_BUILD_BUILD_DIR", value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
}

impl DirArgs {
    /// The flag or variable, else cargo's own answer for the current directory.
    fn build_dir(&self) -> Result<BuildDir> {
        Ok(match &self.build_dir {
            Some(dir) => BuildDir::Given(dir.clone()),
            None => BuildDir::FromCargo(std::env::current_dir().map_err(Error::CurrentDir)?),
        })
    }
}

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// The artifacts directory to write; must be a store path
    #[arg(long, env = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Compression of the archive (the GC anchor keeps compressed archives safe)
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: Compression,
    /// zstd compression level
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub zstd_level: i32,
    /// zstd worker threads (the archive is small: one thread is as fast and keeps memory
    /// flat; more help only for huge trees)
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: u32,
    /// The workspace manifest, whose local packages' source digests the manifest records
    /// [default: found from the current directory, as cargo does; none found: no digests]
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Mtimes the archive records: the store's canonical one for every directory and file
    /// (the same build packs to the same bytes), or the build's (auto: store inside a Nix
    /// build, where the output's files get it anyway)
    #[arg(long, value_enum, default_value = "auto")]
    pub mtimes: pack::ArchiveMtimes,
    /// Executables stored inside the compressed archive and restored as real files, rather than
    /// linked like libraries (a bigger output, a faster unpack): test binaries, bins and
    /// examples (`leaves`), those and build scripts (`all`: an output whose build scripts
    /// nothing inherits, a check or a package), or none (a deps output)
    #[arg(long, value_enum, default_value = "leaves", value_name = "WHICH")]
    pub inline_executables: pack::InlineExecutables,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args)]
pub struct UnpackArgs {
    /// Artifacts directory (or a crane target.tar.zst)
    pub artifacts: PathBuf,
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Mtimes of restored files: as archived, or the store's canonical mtime like the linked
    /// artifacts (auto: store when the linked artifacts carry it)
    #[arg(long, value_enum, default_value = "auto")]
    pub mtimes: unpack::MtimePolicy,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Args)]
pub struct RefsArgs {
    /// Files or directories to scan
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Fail if this store path (absolute, or a base name) is referenced; repeatable
    #[arg(long, value_name = "STORE_PATH")]
    pub forbid: Vec<String>,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Artifacts directory
    pub artifacts: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    report: ReportArgs,
}

/// Runs a parsed command.
pub fn run(command: Command) -> Result<Done> {
    match command {
        Command::Pack(args) => run_pack(args),
        Command::Unpack(args) => run_unpack(args),
        Command::Refs(args) => run_refs(args),
        Command::Verify(args) => run_verify(args),
        Command::Env(args) => run_env(args),
        Command::Exec(args) => run_exec(args),
        Command::Freshen(args) => run_freshen(args),
        Command::Hydrate(args) => run_hydrate(args),
        Command::Demo(args) => crate::demo::run(args)
            .map(|()| Done::Ok)
            .map_err(Error::Demo),
        Command::Explain(args) => run_explain(args),
    }
}

fn run_pack(args: PackArgs) -> Result<Done> {
    let start = Instant::now();
    let threads = args.jobs;
    // A bad --manifest-path is reported before anything else (the build dir may ask cargo).
    let workspace = match args.manifest_path {
        Some(path) => {
            workspace::check_manifest_path(&path)?;
            Some(path)
        }
        None => workspace::locate_manifest(&std::env::current_dir().map_err(Error::CurrentDir)?),
    };
    let opts = pack::PackOptions {
        build_dir: args.dirs.build_dir()?,
        target_dir: args.dirs.target_dir,
        out: args.out,
        compression: args.compress,
        zstd_level: args.zstd_level,
        zstd_threads: if threads > 1 { threads } else { 0 },
        store: args.store.store()?,
        workspace,
        archive_mtime: args.mtimes.fixed(pack::in_nix_build()),
        inline_executables: args.inline_executables,
    };
    let r = pack::pack(&opts)?;
    args.report.report(
        || {
            let mut line = format!(
                "      Packed {} entries ({} linked, {} inlined {}, {} moved {}) into {} ({}, {} store paths anchored, sources of {} local packages digested",
                r.entries, r.linked, r.inlined, bytes(r.inlined_bytes), r.moved, bytes(r.moved_bytes),
                r.archive.display(), bytes(r.archive_bytes), r.anchored, r.digested,
            );
            if !r.left_out.is_empty() {
                line += &format!(", {} stale local unit fingerprints left out", r.left_out.len());
            }
            line + &format!(") in {}", elapsed(start.elapsed()))
        },
        &r,
    )?;
    Ok(Done::Ok)
}

fn unpack_options(args: &UnpackArgs) -> Result<unpack::UnpackOptions> {
    Ok(unpack::UnpackOptions {
        artifacts: args.artifacts.clone(),
        build_dir: args.dirs.build_dir()?,
        target_dir: args.dirs.target_dir.clone(),
        store: args.store.store()?,
        mtimes: args.mtimes,
    })
}

fn run_hydrate(args: UnpackArgs) -> Result<Done> {
    let start = Instant::now();
    let opts = unpack_options(&args)?;
    let r = hydrate::hydrate(&opts)?;
    for leftover in &r.leftovers {
        eprintln!("warning: {leftover}");
    }
    args.report.report(
        || {
            let (target, artifacts) = (r.target_dir.display(), r.artifacts.display());
            let clean = format!("`cargo clean` to refill it from {artifacts}");
            let what = match &r.action {
                hydrate::Action::Hydrate => format!("filled {target} from {artifacts}"),
                hydrate::Action::Replace { previous } => format!(
                    "refilled {target} from {artifacts} (it held {}, unchanged since)",
                    previous.display()
                ),
                hydrate::Action::Resume { previous } => format!(
                    "filled {target} from {artifacts} (a fill from {} had not finished)",
                    previous.display()
                ),
                hydrate::Action::UpToDate => format!("{target} is filled from {artifacts} already"),
                hydrate::Action::KeepChanged { why, .. } => {
                    format!("kept {target}: {why}; {clean}")
                }
                hydrate::Action::KeepOwn => format!(
                    "kept {target}: a build of your own (no {} marker); {clean}",
                    hydrate::MARKER
                ),
                hydrate::Action::KeepBusy { lock } => format!(
                    "kept {target}: cargo is building in it (it holds `{}`); enter again when it \
                     is done to refill it from {artifacts}",
                    lock.display()
                ),
            };
            format!("    Hydrate: {what} in {}", elapsed(start.elapsed()))
        },
        &r,
    )?;
    Ok(Done::Ok)
}

fn run_unpack(args: UnpackArgs) -> Result<Done> {
    let start = Instant::now();
    let opts = unpack_options(&args)?;
    let r = unpack::unpack(&opts)?;
    args.report.report(
        || {
            format!(
                "    Unpacked {} ({} dirs, {} links, {} files {}, {:?} mtimes) into {} in {}",
                r.format,
                r.dirs,
                r.links,
                r.files,
                bytes(r.file_bytes),
                r.mtimes,
                opts.target_dir.display(),
                elapsed(start.elapsed()),
            )
        },
        &r,
    )?;
    Ok(Done::Ok)
}

fn run_refs(args: RefsArgs) -> Result<Done> {
    let store = args.store.store()?;
    let forbid = args
        .forbid
        .iter()
        .map(|f| {
            refs::parse_forbid(&store, f).map_err(|source| Error::Forbid {
                arg: f.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let report = refs::find_references(&store, &args.paths, &forbid)?;
    let paths: Vec<String> = report
        .references
        .iter()
        .map(|p| store.to_absolute(p).display().to_string())
        .collect();
    if args.json.json {
        let hits: Vec<_> = report
            .forbidden_hits
            .iter()
            .map(|h| serde_json::json!({"file": h.file, "offset": h.offset, "store_path": store.to_absolute(&h.path)}))
            .collect();
        print_json(&serde_json::json!({"references": paths, "forbidden": hits}))?;
    } else {
        print_stdout(&paths.iter().map(|p| format!("{p}\n")).collect::<String>())?;
        for h in &report.forbidden_hits {
            eprintln!(
                "error: `{}` at offset {} references forbidden `{}`",
                h.file.display(),
                h.offset,
                store.to_absolute(&h.path).display()
            );
        }
    }
    if !report.forbidden_hits.is_empty() {
        if !args.json.json {
            eprintln!(
                "error: {} forbidden reference(s) found; find where they come from (e.g. debug info, \
                 panic messages, build-script paths) and strip or remap them",
                report.forbidden_hits.len()
            );
        }
        return Err(Error::ForbiddenReferences(report.forbidden_hits.len()));
    }
    Ok(Done::Ok)
}

fn run_verify(args: VerifyArgs) -> Result<Done> {
    let start = Instant::now();
    let r = verify::verify(&args.artifacts, &args.store.store()?)?;
    if !args.report.json {
        for p in &r.problems {
            eprintln!("error: {p}");
        }
    }
    args.report.report(
        || {
            format!(
                "    Verified {} entries ({} links, {} store paths anchored): {} in {}",
                r.entries,
                r.links,
                r.anchored,
                if r.problems.is_empty() {
                    "ok".to_string()
                } else {
                    format!("{} problem(s)", r.problems.len())
                },
                elapsed(start.elapsed()),
            )
        },
        &r,
    )?;
    match r.problems.len() {
        0 => Ok(Done::Ok),
        n => Err(Error::VerifyProblems(n)),
    }
}

fn run_env(args: EnvArgs) -> Result<Done> {
    let vars = wrapper_env_here(&args.config)?;
    if args.json.json {
        let object = vars
            .iter()
            .map(|(k, v)| match v.to_str() {
                Some(v) => Ok((k.clone(), serde_json::Value::from(v))),
                None => Err(Error::NotUtf8Json {
                    var: k.clone(),
                    lossy: v.to_string_lossy().into_owned(),
                }),
            })
            .collect::<Result<serde_json::Map<_, _>>>()?;
        print_json(&object)?;
    } else {
        print_stdout(&nixcache::userwrapper::shell_exports(&vars))?;
    }
    Ok(Done::Ok)
}

fn run_exec(args: ExecArgs) -> Result<Done> {
    use std::os::unix::process::CommandExt;
    let config = nixcache::userwrapper::cargo_config_args(&args.command);
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .envs(wrapper_env_here(&config)?);
    Err(Error::Exec {
        program: args.command[0].to_string_lossy().into_owned(),
        source: cmd.exec(),
    })
}

fn run_freshen(args: FreshenArgs) -> Result<Done> {
    let start = Instant::now();
    let cwd = std::env::current_dir().map_err(Error::CurrentDir)?;
    let manifest_path = match args.manifest_path {
        Some(path) => path,
        None => workspace::locate_manifest(&cwd).ok_or(workspace::WorkspaceError::NotFound(cwd))?,
    };
    let opts = freshen::FreshenOptions {
        manifest_path,
        inherited: args.inherited,
        skip: [Some(args.dirs.target_dir), args.dirs.build_dir]
            .into_iter()
            .flatten()
            .collect(),
        store: args.store.store()?,
    };
    let r = freshen::freshen(&opts)?;
    args.report.report(
        || {
            let copied = match r.copied {
                0 => String::new(),
                n => format!(", {n} links out of the workspace replaced by copies"),
            };
            format!(
                "   Freshened {} of {} local packages ({} files{copied}) in {}{}",
                r.freshened,
                r.packages.len(),
                r.touched,
                elapsed(start.elapsed()),
                freshen_details(&r.packages),
            )
        },
        &r,
    )?;
    Ok(Done::Ok)
}

fn run_explain(args: ExplainArgs) -> Result<Done> {
    let g = &args.report;
    let start = Instant::now();
    let (log, cargo) = match &args.log {
        Some(path) => (explain::read_log(path)?, None),
        None => {
            // Set by cargo for its subcommands: the cargo that ran `cargo nixcache`.
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let to = if g.json {
                explain::run::Passthrough::Stderr
            } else {
                explain::run::Passthrough::Stdout
            };
            let run = explain::run::run(&cargo, &args.cargo_args, to)?;
            if !run.status.success() && !run.log.saw_log && !run.log.saw_messages {
                // cargo stopped before building anything (a bad argument, a broken manifest):
                // its own error says why, and there is nothing to explain.
                return Ok(Done::Cargo(run.status));
            }
            (run.log, Some(run.status))
        }
    };
    let report = explain::Report::new(&log);
    let text = if g.json {
        serde_json::to_string(&report)? + "\n"
    } else {
        let cwd = std::env::current_dir().map_err(Error::CurrentDir)?;
        report.table(&cwd)
    };
    print_stdout(&text)?;
    if args.log.is_some() && !log.saw_log && !log.saw_messages {
        eprintln!(
            "note: the log holds no fingerprint lines and no cargo messages; if cargo rebuilt \
             anything, run it with CARGO_LOG={}",
            explain::LOG_FILTER
        );
    }
    if !g.quiet && !g.json {
        eprintln!(
            "   Explained {} in {}",
            report.summary(),
            elapsed(start.elapsed())
        );
    }
    Ok(cargo.map_or(Done::Ok, Done::Cargo))
}

/// `: sources differ: app, applib; kept (same sources): workspace root`.
fn freshen_details(packages: &[freshen::PackageReport]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for p in packages {
        let label = match p.action {
            freshen::Action::Kept => format!("kept ({})", p.reason.describe()),
            freshen::Action::Freshened => p.reason.describe().to_string(),
        };
        let name = p.name.as_deref().unwrap_or("workspace root");
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, names)) => names.push(name),
            None => groups.push((label, vec![name])),
        }
    }
    const SHOWN: usize = 8;
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(label, names)| {
            let mut list = names[..names.len().min(SHOWN)].join(", ");
            if names.len() > SHOWN {
                list += &format!(" and {} more", names.len() - SHOWN);
            }
            format!("{label}: {list}")
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help of an option given before the command name lists exactly the commands that
    /// take it (whose own arguments have it).
    #[test]
    fn leading_help_names_the_commands_that_take_each_option() {
        let cli = Cli::command();
        for id in ["store_dir", "quiet", "json"] {
            let arg = cli.get_arguments().find(|a| a.get_id() == id).unwrap();
            let help = arg.get_help().unwrap().to_string();
            let named: Vec<&str> = help.split(|c: char| !c.is_ascii_alphabetic()).collect();
            for sub in cli.get_subcommands() {
                let takes = sub.get_arguments().any(|a| a.get_id() == id);
                assert_eq!(
                    named.contains(&sub.get_name()),
                    takes,
                    "`{}` of `{}`: {help}",
                    sub.get_name(),
                    id
                );
            }
        }
    }
}
