# A stand-in for crane's removeReferencesToVendoredSources: rewrites the vendor dir's store hash
# to eeee... in every regular file of $out, registered on postInstallHooks like crane's.
removeReferencesToVendoredSources() {
    local installLocation="${1:-${out:?not defined}}"
    local vendoredDir="${2:-${cargoVendorDir:?not defined}}"
    local hash
    hash=$(basename "$vendoredDir" | cut -c1-32)
    echo "stripping references to cargoVendorDir ($hash)"
    echo "crane-remove-references" >>"$log/crane-calls"
    find "$installLocation" -type f -print0 | xargs -0 --no-run-if-empty \
        sed -i "s!$NIX_STORE/$hash!$NIX_STORE/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee!g"
}

if [ -n "${cargoVendorDir-}" ]; then
    postInstallHooks+=(removeReferencesToVendoredSources)
fi
