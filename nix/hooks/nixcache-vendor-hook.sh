# shellcheck shell=bash
# cargo-nixcache stable vendor path hook (opt-in): cargo sees the vendored crates at one fixed
# path in every derivation, so a deps layer vendored from another Cargo.lock still finds the
# registry units it inherits Fresh.
#
# Why: cargo fingerprints a unit of a non-path package (registry, git) by the ABSOLUTE path of
# its source file (cargo's `path_args`, hashed into the fingerprint's `path`), and crane's
# vendorCargoDeps gives each lock a store path of its own. Two layers vendored from two locks
# see the same crate at two paths, and every unit one inherits from the other is dirty.
#
# What: after the configure phase (crane's configureCargoVendoredDepsHook writes cargo's source
# replacement as a preConfigure hook), link $NIX_BUILD_TOP/nixcache-vendor to the vendor dir and
# point the config's `directory = "<vendor dir>..."` entries through that link. cargo keeps a
# directory source's path as written (it does not canonicalize it), so the sources are at
# $NIX_BUILD_TOP/nixcache-vendor/..., which is /build/... in every sandboxed Linux build. It does
# not help where NIX_BUILD_TOP differs between derivations (sandbox = false), and deps built this
# way do not warm a dev shell: see docs/nix.md, "A stable vendor path".
#
# Knobs (derivation attributes):
#   nixcacheStableVendorDir   true (1): do it; unset or empty: this hook does nothing
#   cargoVendorDir            the vendor dir (crane's attribute; crane sets it); unset or
#                             empty: nothing is vendored, nothing to do
#   nixcacheVendorConfig      the cargo config holding the source replacement (default
#                             $CARGO_HOME/config.toml, where crane's hook writes it)

# nixcacheStableVendor [VENDOR_DIR [CONFIG]]: crane's configureCargoVendoredDepsHook's parameters.
nixcacheStableVendor() {
    local vendorDir="${1:-${cargoVendorDir:-}}"
    local config="${2:-${nixcacheVendorConfig:-${CARGO_HOME:-}/config.toml}}"
    local link="${NIX_BUILD_TOP:-}/nixcache-vendor"

    case "$vendorDir" in
    /*) ;;
    "")
        # Nothing vendored (crane: cargoVendorDir = null): nothing to redirect.
        echo "nixcache: nixcacheStableVendorDir: cargoVendorDir is not set, nothing to redirect"
        return 0
        ;;
    *)
        echo "nixcache: nixcacheStableVendorDir: cargoVendorDir is not an absolute path:" \
            "\`$vendorDir\`" >&2
        return 1
        ;;
    esac
    vendorDir="${vendorDir%/}"
    if [ -z "${NIX_BUILD_TOP:-}" ]; then
        echo "nixcache: nixcacheStableVendorDir: NIX_BUILD_TOP is not set (not a Nix build?)" >&2
        return 1
    fi
    if [ ! -f "$config" ]; then
        echo "nixcache: nixcacheStableVendorDir: no cargo config at \`$config\`" >&2
        return 1
    fi
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        echo "nixcache: nixcacheStableVendorDir: \`$link\` exists and is not our link" >&2
        return 1
    fi
    ln -sfn -- "$vendorDir" "$link" || return 1

    # Rewrite `directory = "VENDOR_DIR[/...]"` lines (TOML basic strings, as crane writes them),
    # nothing else. A store path holds no `"` or `\`, so the value needs no unescaping. Lines
    # already through the link (the hook ran before) count as done.
    local line rest count=0 re='^([[:space:]]*directory[[:space:]]*=[[:space:]]*")(.*)$'
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ "$line" =~ $re ]]; then
            rest="${BASH_REMATCH[2]}"
            case "$rest" in
            "$vendorDir\""* | "$vendorDir/"*)
                line="${BASH_REMATCH[1]}$link${rest#"$vendorDir"}"
                count=$((count + 1))
                ;;
            "$link\""* | "$link/"*) count=$((count + 1)) ;;
            esac
        fi
        printf '%s\n' "$line"
    done <"$config" >"$config.nixcache-tmp" || return 1
    mv -- "$config.nixcache-tmp" "$config" || return 1

    if [ "$count" -eq 0 ]; then
        echo "nixcache: nixcacheStableVendorDir: \`$config\` has no \`directory = \"$vendorDir...\"\`" \
            "entry to redirect (is cargo's source replacement written elsewhere? set" \
            "nixcacheVendorConfig)" >&2
        return 1
    fi
    echo "nixcache: vendored sources at $link (-> $vendorDir): $count source(s) in $config"
}

if [ -n "${nixcacheStableVendorDir:-}" ] && [ "${nixcacheStableVendorDir}" != 0 ]; then
    postConfigureHooks+=(nixcacheStableVendor)
fi
