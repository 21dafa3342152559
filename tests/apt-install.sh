#!/usr/bin/env bash
# Installs Debian packages the tests need, if any are named: as root from Debian's archive,
# otherwise it stops saying what to install. Usage: tests/apt-install.sh CALLER [PACKAGE...]
set -euo pipefail
caller="$1"
shift
[ $# -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "$caller: missing $*; install them (apt-get install $*)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$@" >/dev/null
