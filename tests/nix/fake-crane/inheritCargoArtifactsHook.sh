# A stand-in for crane's inheritCargoArtifactsHook (crane itself cannot be fetched here): same
# function name, parameters and registration; the body handles the use-zstd format only, and
# records each call in $log/crane-calls.
inheritCargoArtifacts() {
    local preparedArtifacts="${1:-${cargoArtifacts:?not defined}}"
    local cargoTargetDir="${2:-${CARGO_TARGET_DIR:-target}}"
    echo "crane-inherit $preparedArtifacts" >>"$log/crane-calls"
    if [ -f "$preparedArtifacts/target.tar.zst" ]; then
        mkdir -p "$cargoTargetDir"
        zstd -d "$preparedArtifacts/target.tar.zst" --stdout | tar -x -C "$cargoTargetDir" --strip-components=1
    else
        echo "unable to copy cargo artifacts, \"$preparedArtifacts\" looks invalid"
        false
    fi
}

if [ -n "${cargoArtifacts-}" ]; then
    postPatchHooks+=(inheritCargoArtifacts)
fi
