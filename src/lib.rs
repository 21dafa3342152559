//! cargo-nixcache: inherit cargo target dirs across Nix derivations in O(files).
//!
//! The library is the inside of the `cargo-nixcache` binary, not an API: a module is `pub` only
//! where the binary or the integration tests use it, and inside it only what they use is `pub`.
//!
//! - [`store`]: where the Nix store is, typed store paths, and scanning bytes for store paths.
//! - [`archive`]: the `symlinks.tar` format, its deterministic writer and validating reader.
//! - [`artifacts`]: the artifacts directory (`$out`), its one owner: file names, format detection
//!   (ours and crane's), manifest, GC anchor, and the one check of everything unpack relies on
//!   ([`artifacts::check`]: unpack's first pass, and all of verify).
//! - [`classify`]: which target-dir files become store symlinks and which stay real files, in
//!   both build-dir layouts.
//! - [`builddir`]: where cargo puts intermediate artifacts (`build.build-dir`), asked of cargo.
//! - [`pack`] / [`unpack`]: target dir to artifacts and back; [`unpack::crane`] reads crane's
//!   formats; [`pack::dirlist`]: a directory's names in byte order, in memory bounded however
//!   big it is.
//! - [`linkcheck`]: where a link into the store really leads.
//! - [`refs`] / [`verify`]: reference listing with `--forbid`, and artifact integrity checks.
//! - [`tree`]: creating entries beneath a directory without following symlinks in it.
//! - [`workspace`]: the workspace's local (path) packages, from its manifests, without cargo.
//! - [`sources`]: each local package's own files, their digest and newest mtime.
//! - [`hydrate`]: filling a dev shell's target dir from a deps output, never over the user's work.
//! - [`freshen`]: the stale-binary guard (fresh mtimes for local packages whose sources changed).
//! - [`explain`]: why cargo did not call a unit Fresh, from its fingerprint log.
//! - [`userwrapper`]: the rustc wrapper cargo would run, resolved with cargo's precedence, and the
//!   environment that chains `nixcache-rustc-wrapper` in front of it (`env`, `exec`).
//! - [`fsutil`]: filesystem helpers whose errors name the path.
//! - [`fault`]: whose fault an error is (input, environment, usage), declared beside each error
//!   type; the binary's one `match` (src/error.rs) makes it the exit code.

pub mod archive;
pub mod artifacts;
pub mod builddir;
mod classify;
pub mod explain;
pub mod fault;
pub mod freshen;
mod fsutil;
pub mod hydrate;
mod linkcheck;
pub mod pack;
pub mod refs;
mod sources;
pub mod store;
mod tree;
pub mod unpack;
pub mod userwrapper;
pub mod verify;
pub mod workspace;
