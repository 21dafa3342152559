# shellcheck shell=bash
# cargo-nixcache dev-shell hook: entering a shell (`nix develop`, `nix-shell`) fills the target
# dir from a deps output, so the first `cargo build` there compiles only your own crates, and
# routes rustc through the nixcache wrapper, so cargo can rebuild inherited units in the shell.
#
#   devShell = pkgs.mkShell {
#     inputsFrom = [ app ];
#     packages = [ cargo-nixcache.hooks.shellHook ];
#     cargoArtifacts = deps;      # a cargo-nixcache (or crane) deps output
#   };
#
# When: sourcing this file (stdenv's setup does, for a package in the shell's inputs) only defines
# functions and appends `nixcacheShellEntry` to `shellHook`; the work happens when the shell runs
# `shellHook`, in your shell, in the directory you entered from. Not on sourcing: `nix develop`
# sources the setup hooks inside a build (Nix's get-env.sh: IN_NIX_SHELL=impure, cwd /build,
# HOME=/homeless-shelter) and keeps only the variables and functions it dumps there, so work done
# while sourcing filled the sandbox's /build/target and never the project's, and failed outright
# with cargoVendorDir (no writable HOME for the CARGO_HOME). Both `nix develop` and nix-shell run
# `shellHook` on entry (nix-shell through stdenv's runHook), after the shell's own shellHook, so
# a CARGO_TARGET_DIR set there is honoured. This is how nixpkgs' setup hooks act on shell entry,
# e.g. pkgs/development/interpreters/python/hooks/venv-shell-hook.sh (NixOS/nixpkgs
# 5672a1d46bf66b491dc2bd68835ce007fa172b4d), which puts its function in `shellHook`. That hook
# takes `shellHook` only when the shell has none (its users call it from theirs); this one appends,
# so the shell's own shellHook and ours both run.
#
# `cargo nixcache hydrate` decides (src/hydrate.rs): it fills an absent or empty target dir and
# records which output it came from and every entry it wrote; entering again does nothing; a
# target dir filled from another output is refilled only if it is exactly as hydrate left it,
# never while cargo holds its lock; a target dir of your own, or one you changed, is never
# touched (`cargo clean` and enter again to fill it). The target dir is
# ${CARGO_TARGET_DIR:-target}, relative to where the shell is entered (the project root).
#
# Inherited units are Fresh only if cargo sees the same dependency sources as the deps build:
# set `cargoVendorDir` (crane's attribute: the vendored sources the deps were built with) and the
# shell gets a CARGO_HOME of its own (under $XDG_CACHE_HOME/cargo-nixcache, your config.toml
# copied in) with that source replacement, as crane's configureCargoVendoredDeps writes it for a
# build. Without it, cargo takes crates from ~/.cargo/registry and rebuilds them all.
# Knobs: cargoArtifacts, cargoVendorDir; dontNixcacheShell=1, as a shell attribute or in the
# environment you enter from: nothing on entry (call nixcacheShellHook yourself, e.g. from your
# shellHook).

# nixcacheShellVendoring VENDOR_DIR: a CARGO_HOME whose config replaces crates.io with VENDOR_DIR.
# Its config.toml is written again on every entry: the user's (from the CARGO_HOME the shell was
# entered with), then the replacement. A shell entered from within such a shell (a nested
# nix-shell, `nix develop` again) inherits one of our CARGO_HOMEs: NIXCACHE_USER_CARGO_HOME keeps
# the user's, and one of ours is never read as the user's (it was once copied onto itself, and
# the hook stopped there).
nixcacheShellVendoring() {
    local vendored="$1" ours home config user
    # `${HOME:?}` would end a non-interactive shell (`nix develop --command`) on the spot.
    if [ -z "${HOME:-}" ]; then
        echo "nixcache: HOME is not set: no place for the shell's CARGO_HOME (cargoVendorDir)" >&2
        return 1
    fi
    ours="${XDG_CACHE_HOME:-$HOME/.cache}/cargo-nixcache"
    home="$ours/cargo-home-$(basename "$vendored")"
    config="$home/config.toml"
    user="${NIXCACHE_USER_CARGO_HOME:-${CARGO_HOME:-$HOME/.cargo}}"
    case "$user" in "$ours"/cargo-home-*) user="$HOME/.cargo" ;; esac
    mkdir -p "$home" || return 1
    if [ -f "$user/config.toml" ]; then
        cp "$user/config.toml" "$config" || return 1
    else
        : >"$config" || return 1
    fi
    if declare -F configureCargoVendoredDepsHook >/dev/null; then
        # crane's own function, when the shell has crane's hooks (inputsFrom a crane derivation).
        configureCargoVendoredDepsHook "$vendored" "$config" >/dev/null || return 1
    elif [ -f "$vendored/config.toml" ]; then
        cat "$vendored/config.toml" >>"$config" || return 1
    else
        # A TOML basic string: backslashes and quotes escaped; a control character (a newline in a
        # directory name) has no place in a path cargo would read, so it is refused.
        if [[ "$vendored" == *[[:cntrl:]]* ]]; then
            echo "nixcache: cargoVendorDir \`$vendored\` holds a control character; cannot write it to $config" >&2
            return 1
        fi
        local quoted="${vendored//\\/\\\\}"
        quoted="${quoted//\"/\\\"}"
        printf '\n[source.crates-io]\nreplace-with = "nix-sources"\n[source.nix-sources]\ndirectory = "%s"\n' \
            "$quoted" >>"$config" || return 1
    fi
    export NIXCACHE_USER_CARGO_HOME="$user" CARGO_HOME="$home"
    echo "nixcache: CARGO_HOME=$CARGO_HOME (crates.io replaced by $vendored)" >&2
}

# nixcacheShellHook [ARTIFACTS]: the work of entering, in the shell's working directory.
nixcacheShellHook() {
    if ! command -v cargo-nixcache >/dev/null; then
        echo "nixcache: cargo-nixcache is not on PATH (the packaged hook, cargo-nixcache.hooks.shellHook, brings it)" >&2
        return 1
    fi
    if [ -n "${cargoVendorDir:-}" ]; then
        nixcacheShellVendoring "$cargoVendorDir" || return 1
    fi
    local artifacts="${1:-${cargoArtifacts:-}}"
    if [ -z "$artifacts" ]; then
        echo "nixcache: cargoArtifacts not set, no target dir to fill" >&2
    else
        cargo-nixcache hydrate "$artifacts" --target-dir "${CARGO_TARGET_DIR:-target}" || return 1
    fi
    local exports
    exports=$(cargo-nixcache env) || return 1
    eval "$exports"
}

# nixcacheShellEntry: what `shellHook` runs. dontNixcacheShell is read again here because under
# `nix develop` the attribute was seen in the build, and only the environment you enter from can
# still say no. A failure does not stop the shell (neither Nix does on a failing shellHook): it
# says what is missing.
nixcacheShellEntry() {
    [ -z "${dontNixcacheShell:-}" ] || return 0
    if ! nixcacheShellHook; then
        echo "nixcache: entering the shell did not finish (above): the target dir may be unfilled and rustc not wrapped; fix it and enter again, or run nixcacheShellHook" >&2
        return 1
    fi
}

# Register on shellHook once (a hook file sourced twice must not run twice); nothing else here.
if [ -z "${dontNixcacheShell:-}" ]; then
    case $'\n'"${shellHook-}"$'\n' in
    *$'\n'nixcacheShellEntry$'\n'*) ;;
    *) shellHook="${shellHook-}"$'\n'nixcacheShellEntry ;;
    esac
fi
