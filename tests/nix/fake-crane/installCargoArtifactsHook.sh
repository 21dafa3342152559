# A stand-in for crane's installCargoArtifactsHook: same function name, parameters, modes and
# registration; use-zstd writes a full target.tar.zst snapshot; calls go to $log/crane-calls.
prepareAndInstallCargoArtifactsDir() {
    local dir="${1:-${out}}"
    local cargoTargetDir="${2:-${CARGO_TARGET_DIR:-target}}"
    local mode="${3:-${installCargoArtifactsMode:-use-symlink}}"
    echo "crane-install $mode" >>"$log/crane-calls"
    mkdir -p "$dir"
    case "$mode" in
        use-zstd)
            tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -c "$cargoTargetDir" |
                zstd -q -o "$dir/target.tar.zst"
            ;;
        use-symlink)
            mv "$cargoTargetDir" --target-directory="$dir"
            ;;
        *)
            echo "unknown mode: \"$mode\""
            false
            ;;
    esac
}

if [ "1" = "${doInstallCargoArtifacts-}" ]; then
    postInstallHooks+=(prepareAndInstallCargoArtifactsDir)
fi
