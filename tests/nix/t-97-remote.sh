# Remote builders (issue 21): two Nix stores on this machine, the test's own ($T/store) and a
# remote builder's, reached with ssh-ng:// through an sshd the test starts on 127.0.0.1
# (../shared/nix-remote-builder.md). An artifacts output is only usable on another machine if Nix
# copies every store path its links point to, and Nix copies a path's references: the GC anchor
# (nixcache-refs) is what makes the paths inside the zstd archive references.
#
# The remote store has the same logical store dir as the local one (store paths must agree) and
# its files elsewhere (`local?real=...`); its builds run sandboxed, as build users, like the
# local ones. Both stores pick their build users from the one pool every private store of the
# suite shares (/tmp/nixcache-userpool, lib.sh), so a remote build never takes the nixbld user a
# local build (of this or a concurrent test) holds: Nix kills every process of the user it picks.

NXT_SSHD=/usr/sbin/sshd

# nxt_free_port: a TCP port on 127.0.0.1 nothing listens on now (the kernel's pick for port 0).
# Another process may take it before sshd binds it: nxt_remote_start then tries another.
nxt_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# nxt_remote_start: a remote builder for this test. Makes its store ($T/remote: store, state,
# log, etc), a client key and a host key ($T/ssh), and starts sshd on 127.0.0.1 on a free port
# with that key's only session a forced command: the remote store's `nix-daemon --stdio` (the
# current Nix's, as run.sh put it on PATH). Sets NXT_REMOTE_STORE (the remote store's URI, to
# query it from here), NXT_BUILDERS (a `builders` line) and exports NIX_SSHOPTS. sshd is stopped
# when the test ends, fails or is interrupted (the test's EXIT trap), and stops itself after
# $NXT_SSHD_SECONDS (default 600) whatever happens.
nxt_remote_start() {
    local r="$T/remote" ssh="$T/ssh" daemon sysroot port="" attempt
    [ -x "$NXT_SSHD" ] || nxt_skip "no \`$NXT_SSHD\`: apt-get install -y openssh-server"
    command -v ssh >/dev/null || nxt_skip "no ssh client: apt-get install -y openssh-client"
    daemon=$(command -v nix-daemon) || nxt_fail "no nix-daemon on PATH (Nix $NXT_NIX)"
    sysroot=$(rustc --print sysroot) || nxt_fail "rustc not found on PATH"

    mkdir -p "$r/store" "$r/state" "$r/log" "$r/etc" "$r/home" "$ssh"
    # Build users must reach the remote's real store dir, as the local one's (lib.sh).
    chmod 755 "$r"
    # The suite's build-user pool: Nix takes it from NIX_STATE_DIR, which the forced command
    # below sets for the remote daemon.
    nxt_user_pool "$r/state"
    NXT_REMOTE_STORE="local?real=$r/store&state=$r/state&log=$r/log"
    cat >"$r/etc/nix.conf" <<CONF
# Written by tests/nix/t-97-remote.sh for Nix $NXT_NIX: the remote builder's store.
store = $NXT_REMOTE_STORE
$(nxt_store_conf "$sysroot")
trusted-users = root
CONF

    # The forced command: whatever the client asks, it gets the remote store's daemon, or
    # nothing if it asks for anything else. Each session's pid is recorded, so that
    # nxt_remote_stop ends what this test started and nothing else.
    cat >"$ssh/remote-cmd" <<SH
#!/bin/sh
echo "\$\$ \$SSH_ORIGINAL_COMMAND" >>"$ssh/sessions"
case "\$SSH_ORIGINAL_COMMAND" in
nix-daemon*--stdio*) ;;
*) echo "remote-cmd: refused \\\`\$SSH_ORIGINAL_COMMAND\\\`" >&2; exit 1 ;;
esac
exec env -i PATH=/usr/bin:/bin HOME="$r/home" NIX_STORE_DIR="$NIX_STORE_DIR" \\
    NIX_STATE_DIR="$r/state" NIX_LOG_DIR="$r/log" NIX_CONF_DIR="$r/etc" "$daemon" --stdio
SH
    chmod 755 "$ssh/remote-cmd"
    : >"$ssh/sessions"
    ssh-keygen -q -t ed25519 -N '' -C nixcache-test-client -f "$ssh/client" ||
        nxt_fail "ssh-keygen (client key) failed"
    ssh-keygen -q -t ed25519 -N '' -C nixcache-test-host -f "$ssh/host" ||
        nxt_fail "ssh-keygen (host key) failed"
    echo "command=\"$ssh/remote-cmd\",restrict $(cat "$ssh/client.pub")" >"$ssh/authorized_keys"

    # sshd refuses to start without its privilege separation dir (Debian's package leaves it to
    # systemd, which this machine does not run). Shared and harmless: never removed.
    mkdir -p /run/sshd
    trap nxt_remote_stop EXIT
    trap 'nxt_remote_stop; exit 130' INT TERM HUP
    for attempt in 1 2 3 4 5; do
        port=$(nxt_free_port) || nxt_fail "could not find a free port"
        cat >"$ssh/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $ssh/host
PidFile $ssh/sshd.pid
AuthorizedKeysFile $ssh/authorized_keys
AllowUsers root
PermitRootLogin forced-commands-only
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
CONF
        : >"$ssh/sshd.log"
        timeout "${NXT_SSHD_SECONDS:-600}" "$NXT_SSHD" -D -f "$ssh/sshd_config" -E "$ssh/sshd.log" &
        NXT_SSHD_PID=$!
        # Bounded wait (10 s) for the listening socket.
        for _ in $(seq 100); do
            if grep -q "Server listening on 127\.0\.0\.1 port $port\." "$ssh/sshd.log"; then
                break 2
            fi
            kill -0 "$NXT_SSHD_PID" 2>/dev/null || break
            sleep 0.1
        done
        nxt_log "sshd did not listen on port $port (attempt $attempt): $(tail -n 3 "$ssh/sshd.log" | tr '\n' ' ')"
        nxt_remote_stop
        port=""
    done
    [ -n "$port" ] || nxt_fail "sshd did not start: $(tail -n 5 "$ssh/sshd.log")"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$ssh/host.pub")" >"$ssh/known_hosts"
    # Nix runs `ssh $NIX_SSHOPTS -i KEY root@127.0.0.1 ...`: the test's port, host key and key
    # only (no user ssh config), never a prompt, bounded connect and dead-peer detection.
    NIX_SSHOPTS="-F /dev/null -p $port -o UserKnownHostsFile=$ssh/known_hosts"
    NIX_SSHOPTS+=" -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
    export NIX_SSHOPTS+=" -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=6"
    NXT_REMOTE_URI="ssh-ng://root@127.0.0.1"
    NXT_BUILDERS="$NXT_REMOTE_URI $(uname -m)-linux $ssh/client 1 1"
    nxt_log "remote builder: $NXT_REMOTE_URI port $port (sshd pid $NXT_SSHD_PID), store $NXT_REMOTE_STORE"
}

# nxt_remote_stop: stop this test's sshd and the remote daemons its sessions started (by the pids
# they recorded, if still theirs), and wait for sshd.
nxt_remote_stop() {
    local pid
    if [ -n "${NXT_SSHD_PID:-}" ]; then
        kill "$NXT_SSHD_PID" 2>/dev/null || true
        wait "$NXT_SSHD_PID" 2>/dev/null || true
        NXT_SSHD_PID=
    fi
    if [ -f "$T/ssh/sessions" ]; then
        while read -r pid _; do
            if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q 'nix-daemon --stdio'; then
                kill "$pid" 2>/dev/null || true
            fi
        done <"$T/ssh/sessions"
    fi
}

# nxt_remote_q ARGS...: nix-store ARGS on the remote builder's store (opened directly).
nxt_remote_q() {
    nix-store --store "$NXT_REMOTE_STORE" "$@"
}

# nxt_nix_build_bounded [nix-build args...]: nxt_nix_build (lib.sh: its log in $T/build.log,
# Nix 2.8's SIGKILL race retried) with every attempt bounded to $NXT_REMOTE_BUILD_SECONDS
# (default 300): a hung ssh session or daemon fails the test instead of stalling the suite.
nxt_nix_build_bounded() {
    local attempt
    for attempt in 1 2 3; do
        timeout "${NXT_REMOTE_BUILD_SECONDS:-300}" nix-build --no-out-link "$@" \
            >"$T/build.out" 2>"$T/build.log" && return 0
        grep -q 'failed due to signal 9 (Killed)' "$T/build.log" || return 1
        nxt_log "nix-build $*: builder SIGKILLed at its end (Nix's EOF race), attempt $attempt"
    done
    return 1
}

# nxt_remote_build FILE [nix-build args...]: build on the remote builder only (`--max-jobs 0`:
# nothing may build locally) and print the output paths, as nxt_build does.
nxt_remote_build() {
    local file="$1"
    shift
    if ! nxt_nix_build_bounded "$file" --max-jobs 0 --builders "$NXT_BUILDERS" "$@"; then
        tail -n 40 "$T/build.log" | sed 's/^/      | /' >&2
        nxt_fail "nix-build $file $* on the remote builder failed (full log: $T/build.log)"
    fi
    cat "$T/build.out"
}

# nxt_assert_remote_built NAME: the last build log shows derivation NAME built on the remote
# builder and its outputs copied back; the remote took its build user from the shared pool.
nxt_assert_remote_built() {
    assert_contains "$T/build.log" "building '[^']*-$1\\.drv' on '$NXT_REMOTE_URI'" "$1 built on the remote builder"
    assert_contains "$T/build.log" "copying path '[^']*-$1' from 'ssh-ng://" "$1's output copied back"
    assert_eq /tmp/nixcache-userpool "$(readlink "$T/remote/state/userpool")" "the remote store's build-user pool"
}

# nxt_remote_expr NAME: chain.nix (deps -> app -> app2) and `appRemote`, a second consumer of deps
# (the same sources and build as app, another derivation).
nxt_remote_expr() {
    nxt_expr "$1" <<NIX
let c = import $NXT_DIR/chain.nix { inherit t; }; in
c // { appRemote = t.mkCargo { name = "app-remote"; cargoArtifacts = c.depsDrv; }; }
NIX
}

# Deps built locally, consumers built on the remote builder.
test_97_remote_consumer() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    nxt_remote_start
    local expr deps app outs out log drv
    expr=$(nxt_remote_expr remote)
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    # app's archive links into deps; app's only reference to deps is its anchor.
    assert_contains "$app/nixcache-refs" "^$deps\$" "app's anchor names the deps output"
    nix-store -q --references "$app" >"$T/app.refs"
    assert_contains "$T/app.refs" "^$deps\$" "app's references"
    assert_eq "$app/nixcache-refs" "$(grep -rlF "$(basename "$deps" | cut -c1-32)" "$app")" \
        "app's files naming deps' hash (the archive is compressed)"
    # app2 inherits app only: deps is no input of its derivation, so it can reach the remote only
    # as a reference of app.
    drv=$(nix-instantiate "$expr" -A app2Drv 2>"$T/instantiate.log") ||
        nxt_fail "nix-instantiate app2Drv: $(tail -n 3 "$T/instantiate.log")"
    nix-store -q --references "$drv" >"$T/app2-drv.refs"
    assert_contains "$T/app2-drv.refs" "-app\\.drv\$" "app2's derivation inputs"
    assert_not_contains "$T/app2-drv.refs" "-deps\\.drv\$" "app2's derivation inputs"
    expect_fail "deps in the remote store before any remote build" nxt_remote_q --check-validity "$deps"

    # app2 on the remote: Nix copies app's closure there (deps with it), the build inherits app
    # (links into app and deps, one hop) and every unit is Fresh.
    outs=$(nxt_remote_build "$expr" -A app2Drv.out -A app2Drv.log)
    mapfile -t out <<<"$outs"
    nxt_assert_remote_built app2
    assert_contains "$T/ssh/sessions" "nix-daemon.*--stdio" "sessions of the remote builder"
    nxt_remote_q --check-validity "$deps" "$app" || nxt_fail "app or deps not valid in the remote store"
    nxt_remote_q -q --references "$app" >"$T/app-remote.refs"
    assert_contains "$T/app-remote.refs" "^$deps\$" "app's references in the remote store"
    log=${out[1]}
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh ')" "units of app2's remote build (all Fresh)"
    assert_eq "6" "$(nxt_units "$log/cargo.json" | wc -l)" "units reported by app2's remote build"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output (built remotely)"
    nxt_assert_links "$log"
    # The result is here and verifies: every link resolves in this store, all anchored.
    assert_exists "${out[0]}/nixcache.json" "app2's artifacts output, copied back"
    nxt_verify_artifacts "${out[0]}"

    # A consumer of deps itself on the remote: deps' units Fresh there, the members compiled
    # through the wrapper over the read-only links.
    outs=$(nxt_remote_build "$expr" -A appRemote.out -A appRemote.log)
    mapfile -t out <<<"$outs"
    nxt_assert_remote_built app-remote
    log=${out[1]}
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units of app-remote's build (inherited units Fresh)"
    assert_eq "3" "$(nxt_units "$log/cargo.json" | grep -c '^fresh')" "Fresh units of app-remote's build"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app-remote's output"
    nxt_assert_links "$log"
    nxt_verify_artifacts "${out[0]}"
    nxt_verify_store
    nxt_remote_q --verify --check-contents >"$T/remote-verify.log" 2>&1 ||
        nxt_fail "nix-store --verify --check-contents on the remote store: $(tail -n 5 "$T/remote-verify.log")"
    assert_not_contains "$T/remote-verify.log" "modified|corrupt|invalid" "the remote store's verification"
}

# Deps (and app) built on the remote builder, the consumer here.
test_97_remote_deps() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    nxt_remote_start
    local expr deps app outs out log
    expr=$(nxt_remote_expr remote)
    deps=$(nxt_remote_build "$expr" -A depsDrv.out)
    nxt_assert_remote_built deps
    outs=$(nxt_remote_build "$expr" -A appDrv.out -A appDrv.log)
    mapfile -t out <<<"$outs"
    nxt_assert_remote_built app
    app=${out[0]}
    log=${out[1]}
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v -E '^fresh nc-(alpha|beta) |^dirty (app|applib|nc-macro) ')" \
        "units of app's remote build (inherited units Fresh)"
    assert_eq "3" "$(nxt_units "$log/cargo.json" | grep -c '^fresh')" "Fresh units of app's remote build"
    nxt_assert_links "$log"
    # The remote's scanner read app's anchor there, and the reference came back with app: rooted
    # alone here, app keeps deps alive through a local GC.
    nix-store -q --references "$app" >"$T/app.refs"
    assert_contains "$T/app.refs" "^$deps\$" "app's references in this store (registered by the remote)"
    nix-store --add-root "$T/result" --indirect -r "$app" >/dev/null || nxt_fail "could not root $app"
    nix-store --gc >"$T/gc.log" 2>&1 || nxt_fail "nix-store --gc failed: $(tail -n 3 "$T/gc.log")"
    assert_contains "$T/gc.log" "store paths deleted" "gc output"
    assert_missing "$log" "app's log output after GC (nothing roots it)"
    assert_exists "$deps" "the deps output after GC (a reference of app)"
    nxt_verify_artifacts "$app"

    # The consumer, here: every unit Fresh through links into what the remote built.
    log=$(nxt_build "$expr" -A app2Drv.log)
    assert_contains "$T/build.log" "building '[^']*-app2\\.drv'" "app2's build"
    assert_not_contains "$T/build.log" "building '[^']*' on |copying path" "app2's build (here, nothing copied)"
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh ')" "units of app2's local build (all Fresh)"
    assert_eq "6" "$(nxt_units "$log/cargo.json" | wc -l)" "units reported by app2's local build"
    assert_eq "hello from applib 84 42" "$(cat "$log/app.out")" "app2's output"
    nxt_assert_links "$log"
    nxt_verify_artifacts "$(nxt_build "$expr" -A app2Drv.out)"
    nxt_verify_store
}

# Negative control: app's artifacts without their references. The same files as app's output
# (manifest, archive, anchor, stop sign), added to the store as a source: a source has no
# references whatever it holds, as a build whose anchor is left out (t-30's control) has none
# (unpack needs the anchor, so this one keeps the file and drops what Nix makes of it). A build
# sees only its inputs' closure, in the sandbox here and in the remote's store: on the remote
# builder, which gets the copy and nothing of app or deps, the consumer fails, naming the path
# its links need. So does a consumer here, in its sandbox; given app as one more input, the
# same copy is inherited with every unit Fresh: only the references were missing.
test_97_remote_without_references() {
    nxt_store_init
    nxt_stage_src
    nxt_tools
    nxt_remote_start
    local expr deps app bare f log
    expr=$(nxt_chain_expr chain)
    deps=$(nxt_build "$expr" -A depsDrv.out)
    app=$(nxt_build "$expr" -A appDrv.out)
    mkdir "$T/app-without-references"
    for f in nixcache.json nixcache-refs target.tar.zst "$(basename "$(ls "$app"/symlinks.tar*)")"; do
        cp "$app/$f" "$T/app-without-references/" || nxt_fail "could not copy $app/$f"
    done
    bare=$(nix-store --add "$T/app-without-references") || nxt_fail "nix-store --add failed"
    assert_contains "$bare/nixcache-refs" "^$deps\$" "the copy's anchor names deps (a file, no reference)"
    assert_contains "$bare/nixcache-refs" "^$app\$" "the copy's anchor names app"
    assert_eq "" "$(nix-store -q --references "$bare")" "the references of app's artifacts without references"
    expr=$(nxt_expr without-references <<NIX
let consumer = name: extra: t.mkCargo ({ inherit name; cargoArtifacts = builtins.storePath "$bare"; } // extra); in
{
  remote = consumer "consumer-remote" { };
  here = consumer "consumer-here" { };
  hereWithApp = consumer "consumer-here-with-app" { extraInput = builtins.storePath "$app"; };
}
NIX
    )
    # On the remote builder: the copy arrives alone, and the consumer fails there.
    if nxt_nix_build_bounded "$expr" -A remote.out --max-jobs 0 --builders "$NXT_BUILDERS"; then
        nxt_fail "the remote consumer of app's artifacts without references succeeded: $(cat "$T/build.out")"
    fi
    cp "$T/build.log" "$T/remote-without-references.log"
    nxt_log "the remote consumer failed, as expected: $(grep -m1 '^error: archive' "$T/build.log" | cut -c1-400)"
    assert_contains "$T/build.log" "building '[^']*-consumer-remote\\.drv' on '$NXT_REMOTE_URI'" "the consumer sent to the remote"
    assert_contains "$T/build.log" "copying path '$bare' to 'ssh-ng://" "the copy sent to the remote"
    assert_not_contains "$T/build.log" "copying path '($deps|$app)' to" "paths sent to the remote"
    assert_contains "$T/build.log" "^error: archive \`$bare/symlinks\\.tar(\\.zst)?\` links into \`($app|$deps)\`, which does not exist" \
        "the remote consumer's unpack"
    assert_contains "$T/build.log" "builder for '[^']*-consumer-remote\\.drv' failed" "the remote consumer's build"
    expect_fail "deps in the remote store" nxt_remote_q --check-validity "$deps"
    expect_fail "app in the remote store" nxt_remote_q --check-validity "$app"

    # Here, the same: app and deps are valid in this store but not in the sandbox.
    nxt_build_fails "$expr" -A here.out
    assert_contains "$T/build.log" "^error: archive \`$bare/symlinks\\.tar(\\.zst)?\` links into \`($app|$deps)\`, which does not exist" \
        "the local consumer's unpack"
    # With app as an input (its closure holds deps), the copy is inherited, every unit Fresh.
    log=$(nxt_build "$expr" -A hereWithApp.log)
    assert_eq "" "$(nxt_units "$log/cargo.json" | grep -v '^fresh ')" "units of the consumer given app as an input"
    assert_eq "6" "$(nxt_units "$log/cargo.json" | wc -l)" "units reported by the consumer given app as an input"
    nxt_assert_links "$log"
}
