#!/usr/bin/env python3
"""Benchmarks for cargo-nixcache: pack/unpack against GNU tar and a raw syscall loop, peak RSS,
the real corpus, and the rustc wrapper on a full build. Driven by bench/run.sh, which builds the
binaries, compiles the two C helpers (rawloop.c, measure.c) and checks the tools; the method and
the figures are in docs/benchmarks.md.

Every comparison is measured in the same run as its baselines, interleaved: each round runs
every command of a suite once, in an order rotated from round to round, so that load from other
processes on this shared machine falls on all of them alike. Each run is timed by `measure`
(fork+exec+wait4 from a small process): wall time, CPU time, and peak RSS (ru_maxrss, what
`/usr/bin/time -v` prints as "Maximum resident set size"; for a pipeline or a command that spawns
helpers, the largest process). Reported: medians over rounds, with min and max in results.json.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NIXBASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
# Appended to a command's name for its run with --old-bin-dir's binary.
OLD = " [old]"


def store_hash(name: str) -> str:
    """A fake but well-formed store path digest: 32 nixbase32 characters derived from `name`."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(NIXBASE32[b % 32] for b in digest)


def store_path(store: Path, name: str) -> Path:
    return store / f"{store_hash(name)}-{name}"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Synthetic target dirs


def gen_tree(root: Path, entries: int, vendor: Path) -> dict:
    """Writes a cargo-shaped debug target dir of about `entries` entries at `root`.

    Per crate, as cargo lays it out: a `.fingerprint/<crate>-<hash>/` dir with 4 small files,
    `deps/lib<crate>-<hash>.{rlib,rmeta}` (or one `.so` for every 15th crate, a proc macro) and a
    dep-info `deps/<crate>-<hash>.d` naming the vendored sources by store path. Every 8th crate
    has a build script: a compile unit (`build/<crate>-<h2>/` with the script binary twice and
    its `.d`, plus its fingerprint dir) and a run unit (`build/<crate>-<h3>/` with cargo's
    bookkeeping files and `out/`, plus its fingerprint dir). That gives ~16% dirs, ~22% files
    that pack turns into links, ~62% small inline files, as the 186-crate corpus once packed
    (259 dirs, 338 links, 1011 files).
    Linked files are real files of 256 bytes here (pack moves them into `$out/artifacts`).
    """
    per8 = 8 * 8 + 19  # entries per 8 crates, see the layout above
    crates = max(1, round((entries - 10) * 8 / per8))
    debug = root / "debug"
    for d in [root, debug, debug / ".fingerprint", debug / "build", debug / "deps",
              debug / "examples", debug / "incremental"]:
        d.mkdir(parents=True)
    (root / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    (root / ".rustc_info.json").write_text('{"rustc_fingerprint":1,"outputs":{}}\n')
    (debug / ".cargo-lock").write_bytes(b"")
    blob = bytes(range(256))

    def h(*parts) -> str:
        return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]

    def fingerprint(unit: str, kind: str, name: str, files: int) -> None:
        d = debug / ".fingerprint" / unit
        d.mkdir()
        body = json.dumps({"rustc": 1, "features": "[]", "target": 2, "profile": 3,
                           "path": 4, "deps": [[5, name, False, 6]], "local": [{"Precalculated": "1"}],
                           "rustflags": [], "config": 0, "compile_kind": 0})
        items = {f"{kind}-{name}": h(unit, "fp"), f"{kind}-{name}.json": body,
                 f"dep-{kind}-{name}": "\x01\x00\x00\x00" + name * 4, "invoked.timestamp": "This file has an mtime of when this was started."}
        for fname, text in list(items.items())[:files]:
            (d / fname).write_text(text)

    for i in range(crates):
        name = f"crate{i}"
        unit = f"{name}-{h(i, 'lib')}"
        fingerprint(unit, "lib", name, 4)
        src = f"{vendor}/{name}-1.0.{i % 7}/src"
        dep_info = f"{debug}/deps/{unit}.d: {src}/lib.rs {src}/a.rs {src}/b.rs\n\n" * 8
        (debug / "deps" / f"{unit}.d").write_text(dep_info)
        if i % 15 == 14:
            (debug / "deps" / f"lib{unit}.so").write_bytes(blob)
        else:
            (debug / "deps" / f"lib{unit}.rlib").write_bytes(blob)
            (debug / "deps" / f"lib{unit}.rmeta").write_bytes(blob)
        if i % 8 == 0:
            compile_unit = f"{name}-{h(i, 'build')}"
            run_unit = f"{name}-{h(i, 'run')}"
            fingerprint(compile_unit, "build-script-build-script", "build", 4)
            fingerprint(run_unit, "run-build-script-build-script", "build", 2)
            b = debug / "build" / compile_unit
            b.mkdir()
            script = f"build_script_build-{compile_unit.rsplit('-', 1)[1]}"
            (b / "build-script-build").write_bytes(blob)
            (b / script).write_bytes(blob)
            (b / f"{script}.d").write_text(f"{b}/{script}: {src}/../build.rs\n")
            r = debug / "build" / run_unit
            r.mkdir()
            (r / "invoked.timestamp").write_text("This file has an mtime of when this was started.")
            (r / "output").write_text(f"cargo:rerun-if-changed=build.rs\ncargo:rustc-cfg={name}_cfg\n")
            (r / "root-output").write_text(str(r / "out"))
            (r / "stderr").write_text("")
            (r / "out").mkdir()
            (r / "out" / "generated.rs").write_text(f"pub const N: usize = {i};\n")
    return {"crates": crates}


def listing(tree: Path, out: Path) -> dict:
    """The entries of `tree` (parents first, children sorted) for rawloop, paths relative to the
    parent of `tree` (so they start with its name, as archive members do)."""
    counts = {"d": 0, "l": 0, "f": 0}
    base = tree.parent
    with open(out, "w") as f:
        def walk(d: Path) -> None:
            for e in sorted(os.scandir(d), key=lambda e: e.name):
                rel = os.path.relpath(e.path, base)
                if e.is_symlink():
                    f.write(f"l\t{rel}\t{os.readlink(e.path)}\n")
                    counts["l"] += 1
                elif e.is_dir():
                    f.write(f"d\t{rel}\n")
                    counts["d"] += 1
                    walk(Path(e.path))
                else:
                    f.write(f"f\t{rel}\t{e.stat(follow_symlinks=False).st_size}\n")
                    counts["f"] += 1
        f.write(f"d\t{tree.name}\n")
        counts["d"] += 1
        walk(tree)
    return counts


# --------------------------------------------------------------------------------------------
# The interleaved runner


@dataclass
class Loc:
    """Where a suite creates its trees (`root/runs/<run>`).

    On `disk` nothing is deleted until the whole run is over, and `runs/` carries ext4's
    "top of directory hierarchy" flag (chattr +T), so that every run's tree goes to a block group
    of its own. Without a journal (as here) ext4's inode allocator skips every inode of the group
    that was deleted in the last 60-360 s, with a buffer-cache lookup for each
    (`recently_deleted`): a tree created where another was just removed pays for that removal,
    up to 30x per create (docs/benchmarks.md). On `tmpfs` each run's tree is removed right after
    it."""
    name: str
    root: Path
    delete_now: bool


@dataclass
class Cmd:
    """A command to time. In `argv` and `prepare` (shell lines run untimed before each run),
    `{D}` is a directory unique to the run (absent before `prepare`; on tmpfs removed after the
    run) and `{OUT}` a store path unique to the run."""
    name: str
    argv: list
    prepare: list = field(default_factory=list)
    runs: int = 0  # 0: every round
    cwd: str = None
    env: dict = None
    samples: list = field(default_factory=list)


class Runner:
    def __init__(self, measure: str, store: Path, scratch: Path):
        self.measure = measure
        self.store = store
        self.scratch = scratch
        self.seq = 0

    def run(self, cmd: Cmd, loc: Loc, suite: str) -> dict:
        self.seq += 1
        slug = f"{suite}-{self.seq}"
        subst = {"{D}": str(loc.root / "runs" / slug), "{OUT}": str(store_path(self.store, f"run-{slug}"))}

        def fill(x):
            x = str(x)
            for k, v in subst.items():
                x = x.replace(k, v)
            return x
        for p in cmd.prepare:
            subprocess.run(fill(p), shell=True, check=True)
        env = None
        if cmd.env is not None:
            env = {k: v for k, v in {**os.environ, **cmd.env}.items() if v is not None}
        result = self.scratch / "measure.json"
        proc = subprocess.run([self.measure, str(result), *map(fill, cmd.argv)], cwd=cmd.cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise SystemExit(f"bench: measure failed: {proc.stderr.decode(errors='replace')}")
        m = json.loads(result.read_text())
        if m["status"] != 0:
            raise SystemExit(f"bench: `{' '.join(map(fill, cmd.argv))}` failed ({m['status']}):\n"
                             f"{proc.stderr.decode(errors='replace')}")
        if loc.delete_now:
            subprocess.run(["rm", "-rf", subst["{D}"]], check=True)
        return {"wall": m["wall_s"], "cpu": m["user_s"] + m["sys_s"], "user": m["user_s"], "sys": m["sys_s"],
                "maxrss_kib": m["maxrss_kib"]}

    def measure_suite(self, title: str, cmds: list, rounds: int, loc: Loc) -> dict:
        """Runs every command `rounds` times, interleaved, the order rotated each round."""
        log(f"{title} [{loc.name}]: {len(cmds)} commands x up to {rounds} rounds")
        suite = title.replace(" ", "_").replace(":", "")
        for r in range(rounds):
            k = r % len(cmds)
            for cmd in cmds[k:] + cmds[:k]:
                if cmd.runs and r >= cmd.runs:
                    continue
                cmd.samples.append(self.run(cmd, loc, suite))
        out = {}
        for cmd in cmds:
            s = cmd.samples
            walls = sorted(x["wall"] for x in s)
            out[cmd.name] = {
                "runs": len(s),
                "median_s": statistics.median(walls),
                "min_s": walls[0],
                "max_s": walls[-1],
                "cpu_median_s": statistics.median(x["cpu"] for x in s),
                "user_median_s": statistics.median(x["user"] for x in s),
                "sys_median_s": statistics.median(x["sys"] for x in s),
                "maxrss_kib": int(statistics.median(x["maxrss_kib"] for x in s)),
                "argv": " ".join(map(str, cmd.argv)),
            }
            o = out[cmd.name]
            log(f"  {cmd.name:34} median {o['median_s']*1e3:9.1f} ms  (min {walls[0]*1e3:.1f}, "
                f"max {walls[-1]*1e3:.1f}, n={len(s)})  cpu {o['cpu_median_s']*1e3:.1f} ms  "
                f"rss {o['maxrss_kib']/1024:.1f} MiB")
        return out


def strace_counts(argv: list, prepare: list, work: Path) -> dict:
    """Syscall counts of one run (`strace -c -f`), as {syscall: calls}."""
    d = work / "strace-run"
    for p in prepare:
        subprocess.run(p.replace("{D}", str(d)), shell=True, check=True)
    out = work / "strace.txt"
    subprocess.run(["strace", "-f", "-c", "-o", str(out), *(str(a).replace("{D}", str(d)) for a in argv)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["rm", "-rf", str(d)], check=True)
    counts = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            counts[parts[-1]] = int(parts[3])
    return counts


# --------------------------------------------------------------------------------------------
# Suites

# What GNU tar does for a non-root user (a Nix build user); as root it would also chown and chmod
# every member.
TAR_X = ["tar", "-x", "--no-same-owner", "--no-same-permissions"]


class Bench:
    def __init__(self, a, tmpfs: Path):
        self.a = a
        self.work = Path(a.work)
        self.store = self.work / "store"
        self.store.mkdir(parents=True)
        self.nixcache = a.bin_dir + "/cargo-nixcache"
        # --old-bin-dir: every suite that times cargo-nixcache times this one too, interleaved,
        # under the same name with OLD appended (render() puts each pair side by side).
        self.nixcache_old = a.old_bin_dir + "/cargo-nixcache" if a.old_bin_dir else None
        # What the old binary reads instead of this build's outputs and unpacked trees: its own
        # (a format it cannot read, or a tree this build restored differently).
        self.twins = {}
        self.wrapper = a.bin_dir + "/nixcache-rustc-wrapper"
        self.rawloop = a.rawloop
        self.runner = Runner(a.measure, self.store, self.work)
        self.locs = [Loc("disk", self.work, delete_now=False)]
        if tmpfs is not None:
            self.locs.insert(0, Loc("tmpfs", tmpfs, delete_now=True))
        for loc in self.locs:
            (loc.root / "runs").mkdir()
        spread = subprocess.run(["chattr", "+T", str(self.work / "runs")], capture_output=True, text=True)
        if spread.returncode != 0:
            log(f"chattr +T failed ({spread.stderr.strip()}): disk runs share block groups")
        self.results = {"machine": machine_info(self.work, tmpfs, a), "synthetic": {}, "syscalls": {}}
        self.results["machine"]["disk_runs_spread"] = spread.returncode == 0
        self.vendor = store_path(self.store, "vendor-cargo-deps")
        self.vendor.mkdir()

    def nc(self, *args) -> list:
        return [self.nixcache, "--quiet", "--store-dir", str(self.store), *map(str, args)]

    def with_old(self, cmds: list) -> list:
        """`cmds`, and after each one that runs cargo-nixcache the same with the old binary,
        reading its twins (`made_by_both`) where this build's outputs are named."""
        out = []
        for c in cmds:
            out.append(c)
            if self.nixcache_old and c.argv and c.argv[0] == self.nixcache:
                argv = [self.twins.get(str(x), x) for x in c.argv[1:]]
                out.append(Cmd(c.name + OLD, [self.nixcache_old, *argv], c.prepare, c.runs, c.cwd, c.env))
        return out

    def made_by_both(self, source: Path, args: list, made: Path) -> None:
        """Runs `cargo-nixcache ARGS` (which read `source` and make `made`: a pack or an unpack),
        and with --old-bin-dir the old binary the same way on a copy of `source` taken before,
        into `made`'s twin, which the old binary's timed commands then read instead."""
        if self.nixcache_old:
            if str(source) not in self.twins:
                copy = source.parent.with_name(source.parent.name + "-old") / source.name
                if not copy.exists():
                    self.sh(f"mkdir -p '{copy.parent}' && cp -a '{source}' '{copy}'")
                self.twins[str(source)] = str(copy)
            twin = Path(f"{made}-old")
            old = [self.twins.get(str(x), str(x)) for x in args[:-1]]
            subprocess.run([self.nixcache_old, "--quiet", "--store-dir", str(self.store), *old, twin],
                           check=True)
            self.twins[str(made)] = str(twin)
        subprocess.run(self.nc(*args), check=True)

    def sh(self, cmd: str) -> None:
        subprocess.run(cmd, shell=True, check=True)

    def unpack_cmds(self, archives: dict, listing_file: Path, with_mtimes_loop: bool) -> list:
        """archives: name -> (kind, path); kind is `ours`, `tar`, `tar-zstd` or `crane`."""
        fresh = "mkdir -p '{D}' && sync -f '{D}'"
        cmds = []
        for name, (kind, path) in archives.items():
            if kind == "ours":
                cmds.append(Cmd(name, self.nc("unpack", path, "--target-dir", "{D}/target"), [fresh]))
            elif kind == "tar":
                cmds.append(Cmd(name, [*TAR_X, "-f", path, "-C", "{D}"], [fresh]))
            elif kind == "tar-zstd":
                cmds.append(Cmd(name, [*TAR_X, "--zstd", "-f", path, "-C", "{D}"], [fresh]))
            elif kind == "crane":  # crane's inheritCargoArtifacts, verbatim but for TAR_X's flags
                cmds.append(Cmd(name, ["sh", "-c", f"zstd -d '{path}' --stdout -q | {' '.join(TAR_X)} "
                                       "-C '{D}/target' --strip-components=1"],
                                ["mkdir -p '{D}/target' && sync -f '{D}'"], runs=3))
        cmds = self.with_old(cmds)
        cmds.append(Cmd("raw loop", [self.rawloop, listing_file, "{D}"], [fresh]))
        if with_mtimes_loop:
            cmds.append(Cmd("raw loop + mtimes", [self.rawloop, listing_file, "{D}", "--mtimes"], [fresh]))
        return cmds

    def synthetic(self, n: int, rounds: dict, rss_rounds: int, do_strace: bool) -> None:
        d = self.work / f"synth-{n}"
        d.mkdir()
        src = d / "src" / "target"
        log(f"synthetic {n}: generating")
        gen = gen_tree(src, n, self.vendor)
        # The artifacts to unpack: a fresh pack (moves files into $out/artifacts), then the same
        # tree, now links, packed again uncompressed. Both archives hold the same entries.
        copy = d / "copy" / "target"
        self.sh(f"mkdir -p '{copy.parent}' && cp -a '{src}' '{copy}'")
        out_z = store_path(self.store, f"synth-{n}-deps")
        out_p = store_path(self.store, f"synth-{n}-deps-plain")
        self.made_by_both(copy, ["pack", "--target-dir", copy, "--out", out_z], out_z)
        self.made_by_both(copy, ["pack", "--compress", "none", "--target-dir", copy, "--out", out_p], out_p)
        unpacked = d / "unpacked" / "target"
        self.made_by_both(out_z, ["unpack", out_z, "--target-dir", unpacked], unpacked)
        counts = listing(unpacked, d / "listing.txt")
        # GNU tar archives of the same unpacked tree, plain and zstd (level 3, as pack's default).
        gnu = d / "gnu.tar"
        self.sh(f"tar -C '{unpacked.parent}' --sort=name --owner=0 --group=0 --numeric-owner "
                f"-cf '{gnu}' target && zstd -q -3 -T0 '{gnu}' -o '{gnu}.zst'")
        sizes = {"ours_zstd": (out_z / "symlinks.tar.zst").stat().st_size,
                 "ours_plain": (out_p / "symlinks.tar").stat().st_size,
                 "gnu_plain": gnu.stat().st_size, "gnu_zstd": Path(f"{gnu}.zst").stat().st_size}
        archives = {"nixcache unpack (zstd)": ("ours", out_z), "nixcache unpack (plain)": ("ours", out_p),
                    "GNU tar -x (zstd)": ("tar-zstd", f"{gnu}.zst"), "GNU tar -x (plain)": ("tar", gnu)}
        res = {"generator": gen, "entries": counts, "archive_bytes": sizes, "unpack": {}}
        for loc in self.locs:
            cmds = self.unpack_cmds(archives, d / "listing.txt", with_mtimes_loop=True)
            res["unpack"][loc.name] = self.runner.measure_suite(f"synthetic {n} unpack", cmds, rounds[loc.name], loc)
        # Pack: fresh (every linked file moved into $out) and a no-change re-pack (of the
        # unpacked tree: every linked file already a link into the store).
        disk = self.locs[-1]
        pack_cmds = [
            Cmd("nixcache pack (fresh)", self.nc("pack", "--target-dir", "{D}/target", "--out", "{OUT}"),
                [f"mkdir -p '{{D}}' && cp -a '{src}' '{{D}}/target' && sync -f '{{D}}'"]),
            Cmd("nixcache pack (re-pack)", self.nc("pack", "--target-dir", unpacked, "--out", "{OUT}"),
                [f"sync -f '{d}'"]),
            # Attribution of pack's RSS: the same re-pack with single-threaded zstd, and without zstd.
            Cmd("re-pack --jobs 1", self.nc("pack", "--jobs", "1", "--target-dir", unpacked, "--out", "{OUT}"),
                [f"sync -f '{d}'"]),
            Cmd("re-pack --compress none", self.nc("pack", "--compress", "none", "--target-dir", unpacked, "--out", "{OUT}"),
                [f"sync -f '{d}'"]),
        ]
        res["pack"] = self.runner.measure_suite(f"synthetic {n} pack", self.with_old(pack_cmds), rss_rounds, disk)
        # verify reads what unpack's first pass reads, and writes nothing.
        verify_cmds = [Cmd("nixcache verify (zstd)", self.nc("verify", out_z)),
                       Cmd("nixcache verify (plain)", self.nc("verify", out_p))]
        res["verify"] = self.runner.measure_suite(f"synthetic {n} verify", self.with_old(verify_cmds),
                                                  rounds[self.locs[0].name], self.locs[0])
        self.results["synthetic"][str(n)] = res
        if do_strace:
            loc = self.locs[0]
            cmds = {c.name: c for c in self.unpack_cmds(archives, d / "listing.txt", False)}
            sc = {"entries": sum(counts.values())}
            for name in ["nixcache unpack (zstd)", "nixcache unpack (plain)", "GNU tar -x (plain)", "raw loop"]:
                sc[name] = strace_counts(cmds[name].argv, cmds[name].prepare, loc.root)
            sc["nixcache pack (re-pack)"] = strace_counts(
                self.nc("pack", "--target-dir", unpacked, "--out", store_path(self.store, f"strace-{n}")), [], loc.root)
            self.results["syscalls"][str(n)] = sc

    def corpus(self, rounds: dict) -> None:
        corpus = Path(self.a.corpus)
        target = corpus / "app" / "target"
        if not (target / "debug").is_dir():
            raise SystemExit(f"bench: no built corpus at {target}; run /work/shared/bench-corpus.sh {corpus}")
        d = self.work / "corpus"
        d.mkdir()
        disk = self.locs[-1]
        same_fs = os.stat(target).st_dev == os.stat(d).st_dev
        # Hard links keep the corpus intact while pack moves files out of the copy.
        cp = "cp -al" if same_fs else "cp -a"
        # crane's compressAndInstallCargoArtifactsDirFull, verbatim flags.
        crane_c = ("tar --sort=name --mtime=@1 --owner=0 --group=0 --mode=u+w --numeric-owner "
                   "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -c target "
                   f"| zstd -q -T{os.cpu_count()} -o")
        pack = self.runner.measure_suite("corpus pack", self.with_old([
            Cmd("nixcache pack", self.nc("pack", "--target-dir", "{D}/target", "--out", "{OUT}"),
                [f"mkdir -p '{{D}}' && {cp} '{target}' '{{D}}/target' && sync -f '{{D}}'"]),
            Cmd("crane tar | zstd (use-zstd)", ["sh", "-c", crane_c + " '{D}/target.tar.zst'"],
                ["mkdir -p '{D}' && sync -f '{D}'"], runs=3, cwd=str(target.parent)),
        ]), rounds["disk"], disk)
        # The artifacts the unpacks below read.
        out = store_path(self.store, "corpus-deps")
        self.sh(f"mkdir -p '{d}/copy' && {cp} '{target}' '{d}/copy/target'")
        if self.nixcache_old:
            self.sh(f"mkdir -p '{d}/copy-old' && {cp} '{target}' '{d}/copy-old/target'")
        self.made_by_both(d / "copy" / "target", ["pack", "--target-dir", d / "copy" / "target", "--out", out], out)
        crane = d / "target.tar.zst"
        self.sh(f"cd '{target.parent}' && {crane_c} '{crane}'")
        unpacked = d / "unpacked" / "target"
        self.made_by_both(out, ["unpack", out, "--target-dir", unpacked], unpacked)
        repack = self.runner.measure_suite("corpus re-pack", self.with_old([
            Cmd("nixcache pack (re-pack)", self.nc("pack", "--target-dir", unpacked, "--out", "{OUT}"),
                [f"sync -f '{d}'"]),
        ]), rounds["disk"] + 2, disk)
        verify = self.runner.measure_suite("corpus verify", self.with_old([
            Cmd("nixcache verify", self.nc("verify", out)),
        ]), rounds[self.locs[0].name], self.locs[0])
        counts = listing(unpacked, d / "listing.txt")
        allsym = d / "allsym.tar"
        self.sh(f"tar -C '{unpacked.parent}' --sort=name --owner=0 --group=0 --numeric-owner "
                f"-cf '{allsym}' target && zstd -q -3 -T0 '{allsym}' -o '{allsym}.zst'")
        archives = {"nixcache unpack": ("ours", out), "crane: zstd -d | tar -x": ("crane", crane),
                    "GNU tar -x all-symlinks (plain)": ("tar", allsym),
                    "GNU tar -x all-symlinks (zstd)": ("tar-zstd", f"{allsym}.zst")}
        unpack = {}
        for loc in self.locs:
            cmds = self.unpack_cmds(archives, d / "listing.txt", with_mtimes_loop=False)
            unpack[loc.name] = self.runner.measure_suite("corpus unpack", cmds, rounds[loc.name], loc)
        self.results["corpus"] = {
            "entries": counts,
            "target_bytes": int(subprocess.run(["du", "-sb", str(target)], capture_output=True, text=True).stdout.split()[0]),
            "archive_bytes": {"ours_zstd": (out / "symlinks.tar.zst").stat().st_size,
                              "crane_target_tar_zst": crane.stat().st_size,
                              "allsym_plain": allsym.stat().st_size,
                              "allsym_zstd": Path(f"{allsym}.zst").stat().st_size},
            "copy": cp, "pack": pack, "repack": repack, "unpack": unpack, "verify": verify,
        }

    def wrapper_builds(self, rounds: int) -> None:
        app = Path(self.a.corpus) / "app"
        base = {"CARGO_TARGET_DIR": None, "RUSTC_WRAPPER": None, "CARGO_BUILD_RUSTC_WRAPPER": None,
                "NIXCACHE_USER_WRAPPER": None, "NIXCACHE_WRAPPER_STRATEGY": None}
        argv = ["env", "CARGO_TARGET_DIR={D}", "cargo", "build", "--offline", "--locked", "-q"]
        prep = ["mkdir -p '{D}' && sync -f '{D}'"]
        cmds = [Cmd("cargo build (no wrapper)", argv, prep, cwd=str(app), env=base)]
        for strategy in self.a.strategies.split(","):
            env = {**base, "RUSTC_WRAPPER": self.wrapper, "NIXCACHE_USER_WRAPPER": "",
                   "NIXCACHE_WRAPPER_STRATEGY": strategy}
            cmds.append(Cmd(f"cargo build (wrapper, {strategy})", argv, prep, cwd=str(app), env=env))
        log("wrapper: one untimed warm-up build (page cache: sources, toolchain)")
        self.runner.run(Cmd("warm-up", argv, prep, cwd=str(app), env=base), self.locs[-1], "warmup")
        self.results["wrapper"] = self.runner.measure_suite("wrapper full corpus build", cmds, rounds, self.locs[-1])


def machine_info(work: Path, tmpfs, a) -> dict:
    def out(*cmd) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    cpu = next((l.split(":", 1)[1].strip() for l in out("lscpu").splitlines() if l.startswith("Model name")), "")
    def mount(path) -> str:
        return " ".join(out("findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", str(path)).split("\n")[0].split())
    fs = {"disk": mount(work)}
    if tmpfs is not None:
        fs["tmpfs"] = mount(tmpfs)
    dev = fs["disk"].split()[1] if len(fs["disk"].split()) > 1 else ""
    journal = ""
    if dev.startswith("/dev/"):
        p = Path("/sys/fs/ext4") / dev[5:] / "journal_task"
        if p.exists():
            journal = p.read_text().strip()
    repo = Path(__file__).resolve().parent.parent
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
        "mem_total_kib": int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))),
        "work_dir": str(work), "tmpfs_dir": str(tmpfs) if tmpfs else None, "fs": fs,
        "ext4_journal_task": journal,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "nice": os.nice(0),
        "tar": out("tar", "--version").splitlines()[0], "zstd": out("zstd", "--version"),
        "rustc": out("rustc", "--version"), "cargo": out("cargo", "--version"),
        "git_head": out("git", "-C", str(repo), "rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(out("git", "-C", str(repo), "status", "--short", "--untracked-files=no",
                                   "--", "src", "wrapper", "Cargo.toml", "Cargo.lock").splitlines()),
    }


def calibrate(b: Bench) -> dict:
    """Mean syscall costs: on tmpfs; on disk in a fresh block group (where the runs go), and in
    the work dir's own group (whatever churn it has seen lately, from anyone)."""
    r = {}
    for name, d in [(loc.name, loc.root / "runs" / "calibrate") for loc in b.locs] + \
                   [("disk, work dir's group", b.work / "calibrate")]:
        d.mkdir()
        r[name] = json.loads(subprocess.run([b.rawloop, "--calibrate", str(d), "2000"], capture_output=True,
                                            text=True, check=True).stdout)
        log(f"syscall cost on {name} (us/call): " + ", ".join(f"{k[:-3]} {v:.1f}" for k, v in r[name].items()))
    return r


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--rawloop", required=True)
    p.add_argument("--measure", required=True)
    p.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs to measure on too; empty: none")
    p.add_argument("--corpus", default="/work/tgt/corpus")
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--rounds", type=int, default=9, help="rounds on tmpfs")
    p.add_argument("--disk-rounds", type=int, default=9)
    p.add_argument("--rounds-100k", type=int, default=5, help="rounds on tmpfs at >= 100k entries")
    p.add_argument("--disk-rounds-100k", type=int, default=3)
    p.add_argument("--rss-rounds", type=int, default=3)
    p.add_argument("--strace-size", type=int, default=10000)
    p.add_argument("--skip-corpus", action="store_true")
    p.add_argument("--skip-wrapper", action="store_true")
    p.add_argument("--wrapper-rounds", type=int, default=3)
    p.add_argument("--strategies", default="in-place,redirect")
    p.add_argument("--old-bin-dir", help="a cargo-nixcache build to time beside this one")
    a = p.parse_args()
    tmpfs = None
    if a.tmpfs:
        fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", a.tmpfs], capture_output=True, text=True).stdout.split("\n")[0].strip()
        if fstype == "tmpfs":
            tmpfs = Path(tempfile.mkdtemp(prefix="nixcache-bench.", dir=a.tmpfs))
        else:
            log(f"{a.tmpfs} is not a tmpfs ({fstype or 'missing'}): measuring on disk only")
    try:
        b = Bench(a, tmpfs)
        started = time.time()
        b.results["machine"]["syscall_us"] = calibrate(b)
        b.results["spawn_floor"] = b.runner.measure_suite("spawn floor", [Cmd("true", ["true"])], 20, b.locs[-1])["true"]
        for n in map(int, a.sizes.split(",")):
            big = n >= 100000
            rounds = {"tmpfs": a.rounds_100k if big else a.rounds, "disk": a.disk_rounds_100k if big else a.disk_rounds}
            b.synthetic(n, rounds, a.rss_rounds, do_strace=(n == a.strace_size))
        if not a.skip_corpus:
            b.corpus({"tmpfs": a.rounds, "disk": a.disk_rounds})
        if not a.skip_wrapper:
            b.wrapper_builds(a.wrapper_rounds)
    finally:
        if tmpfs is not None:
            shutil.rmtree(tmpfs, ignore_errors=True)
    b.results["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    b.results["elapsed_s"] = round(time.time() - started)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(b.results, indent=1) + "\n")
    summary = render(b.results)
    (out / "summary.md").write_text(summary)
    print(summary)
    log(f"results in {out}/results.json and {out}/summary.md ({b.results['elapsed_s']} s)")


# --------------------------------------------------------------------------------------------
# Report


def ms(s: float) -> str:
    return f"{s:.2f} s" if s >= 10 else f"{s*1e3:.0f} ms" if s >= 0.1 else f"{s*1e3:.1f} ms"


def mib(kib: int) -> str:
    return f"{kib/1024:.1f} MiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def old_pairs(r: dict):
    """(suite, fs, command, new, old) for every command measured with both binaries."""
    suites = []
    for n, s in r.get("synthetic", {}).items():
        suites += [(f"synthetic {n} unpack", loc, un) for loc, un in s["unpack"].items()]
        suites += [(f"synthetic {n} pack", "disk", s["pack"])]
        suites += [(f"synthetic {n} verify", "", s["verify"])] if "verify" in s else []
    if "corpus" in r:
        c = r["corpus"]
        suites += [("corpus pack", "disk", c["pack"]), ("corpus re-pack", "disk", c["repack"])]
        suites += [("corpus unpack", loc, un) for loc, un in c["unpack"].items()]
        suites += [("corpus verify", "", c["verify"])] if "verify" in c else []
    for suite, loc, cmds in suites:
        for name, v in cmds.items():
            if not name.endswith(OLD) and name + OLD in cmds:
                yield suite, loc, name, v, cmds[name + OLD]


def render(r: dict) -> str:
    m = r["machine"]
    L = ["# cargo-nixcache benchmark", "",
         f"{m['date']}; {m['nproc']} CPUs ({m['cpu']}), {m['mem_total_kib']//1024} MiB, kernel {m['kernel']}; "
         f"nice {m['nice']}; load {'/'.join(m['loadavg_start'])} at start, {'/'.join(m.get('loadavg_end', ['?']))} at end; "
         f"{m['tar']}; {m['zstd']}; {m['rustc']}; git {m['git_head']} "
         f"(+{m['git_dirty_files']} modified tracked files in src/, wrapper/).", ""]
    for loc, fs in m["fs"].items():
        L.append(f"- {loc}: `{fs}`" + (f" (ext4 journal: {m['ext4_journal_task']})" if loc == "disk" and m["ext4_journal_task"] else "")
                 + ("" if loc != "disk" else "; runs in fresh block groups (chattr +T): "
                    + ("yes" if m.get("disk_runs_spread") else "**no**")))
    L += ["", "Syscall cost, us per call (mean of 2000 in a new directory):", "",
          "| where | " + " | ".join(k[:-3] for k in next(iter(m["syscall_us"].values()))) + " |",
          "| --- |" + " --- |" * len(next(iter(m["syscall_us"].values())))]
    for where, v in m["syscall_us"].items():
        L.append(f"| {where} | " + " | ".join(f"{x:.1f}" for x in v.values()) + " |")
    L.append("")
    L += [f"- spawn floor (`true` under the measuring shim): {ms(r['spawn_floor']['median_s'])}", ""]
    if r["synthetic"]:
        L += ["## Synthetic target dirs: unpack (median wall time; ratio = ours / baseline)", "",
              "| fs | entries (dirs/links/files) | ours zstd | ours plain | GNU tar zstd | GNU tar plain | raw loop "
              "| raw + mtimes | zstd / tar zstd | plain / tar plain | zstd / raw | <= tar, <= 2x raw |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for n, s in r["synthetic"].items():
            for loc, un in s["unpack"].items():
                u = {k: v["median_s"] for k, v in un.items()}
                e = s["entries"]
                oz, op = u["nixcache unpack (zstd)"], u["nixcache unpack (plain)"]
                tz, tp = u["GNU tar -x (zstd)"], u["GNU tar -x (plain)"]
                raw = u["raw loop"]
                ok = oz <= tz and op <= tp and oz <= 2 * raw
                L.append(f"| {loc} | {sum(e.values())} ({e['d']}/{e['l']}/{e['f']}) | {ms(oz)} | {ms(op)} | {ms(tz)} | {ms(tp)} "
                         f"| {ms(raw)} | {ms(u['raw loop + mtimes'])} | {oz/tz:.2f} | {op/tp:.2f} | {oz/raw:.2f} | {verdict(ok)} |")
        L += ["", "CPU time (user+sys, median) of the same runs:", "",
              "| fs | entries | ours zstd | ours plain | GNU tar zstd | GNU tar plain | raw loop |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for n, s in r["synthetic"].items():
            for loc, un in s["unpack"].items():
                L.append(f"| {loc} | {sum(s['entries'].values())} | " + " | ".join(
                    ms(un[k]["cpu_median_s"]) for k in ["nixcache unpack (zstd)", "nixcache unpack (plain)",
                                                        "GNU tar -x (zstd)", "GNU tar -x (plain)", "raw loop"]) + " |")
        L += ["", "## Synthetic target dirs: peak RSS, and pack time (disk)", "",
              "| entries | unpack zstd RSS | unpack plain RSS | GNU tar plain RSS | pack (fresh) | pack RSS | re-pack | re-pack RSS "
              "| re-pack RSS, --jobs 1 | re-pack RSS, --compress none |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for n, s in r["synthetic"].items():
            u, pk = s["unpack"][next(iter(s["unpack"]))], s["pack"]
            L.append(f"| {sum(s['entries'].values())} | {mib(u['nixcache unpack (zstd)']['maxrss_kib'])} "
                     f"| {mib(u['nixcache unpack (plain)']['maxrss_kib'])} | {mib(u['GNU tar -x (plain)']['maxrss_kib'])} "
                     f"| {ms(pk['nixcache pack (fresh)']['median_s'])} | {mib(pk['nixcache pack (fresh)']['maxrss_kib'])} "
                     f"| {ms(pk['nixcache pack (re-pack)']['median_s'])} | {mib(pk['nixcache pack (re-pack)']['maxrss_kib'])} "
                     f"| {mib(pk['re-pack --jobs 1']['maxrss_kib'])} | {mib(pk['re-pack --compress none']['maxrss_kib'])} |")
        sizes = list(r["synthetic"])
        if len(sizes) > 1:
            lo, hi = r["synthetic"][sizes[0]], r["synthetic"][sizes[-1]]
            loc = next(iter(lo["unpack"]))
            g = {"unpack zstd": hi["unpack"][loc]["nixcache unpack (zstd)"]["maxrss_kib"] / lo["unpack"][loc]["nixcache unpack (zstd)"]["maxrss_kib"],
                 "unpack plain": hi["unpack"][loc]["nixcache unpack (plain)"]["maxrss_kib"] / lo["unpack"][loc]["nixcache unpack (plain)"]["maxrss_kib"],
                 "pack": hi["pack"]["nixcache pack (fresh)"]["maxrss_kib"] / lo["pack"]["nixcache pack (fresh)"]["maxrss_kib"],
                 "re-pack": hi["pack"]["nixcache pack (re-pack)"]["maxrss_kib"] / lo["pack"]["nixcache pack (re-pack)"]["maxrss_kib"]}
            L += ["", f"RSS growth from {sizes[0]} to {sizes[-1]} entries: " +
                  ", ".join(f"{k} x{v:.2f}" for k, v in g.items()) +
                  f"; target flat (x <= 1.25): {verdict(all(v <= 1.25 for v in g.values()))}."]
    for n, s in r.get("syscalls", {}).items():
        entries = s["entries"]
        names = [k for k in s if k != "entries"]
        calls = sorted({c for k in names for c in s[k]}, key=lambda c: -max(s[k].get(c, 0) for k in names))
        L += ["", f"## Syscalls per entry, {entries} entries (`strace -c -f`, one run)", "",
              "| syscall | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
        for c in calls:
            if max(s[k].get(c, 0) for k in names) >= entries / 100:
                L.append(f"| {c} | " + " | ".join(f"{s[k].get(c, 0)/entries:.2f}" for k in names) + " |")
        L.append("| **total** | " + " | ".join(f"{sum(s[k].values())/entries:.2f}" for k in names) + " |")
    if "corpus" in r:
        c = r["corpus"]
        e = c["entries"]
        L += ["", f"## Corpus: {sum(e.values())} entries ({e['d']} dirs, {e['l']} links, {e['f']} files), "
              f"target {c['target_bytes']/2**20:.0f} MiB (copies made with `{c['copy']}`)", "",
              "| step | fs | median | min-max | runs | CPU | peak RSS | ours / this |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        ours_pack = c["pack"]["nixcache pack"]["median_s"]
        rows = [("disk", "pack", k, v) for k, v in c["pack"].items()]
        rows += [("disk", "repack", k, v) for k, v in c["repack"].items()]
        rows += [(loc, "unpack", k, v) for loc, un in c["unpack"].items() for k, v in un.items()]
        for loc, section, name, v in rows:
            ratio = ""
            if section == "pack" and name != "nixcache pack":
                ratio = f"{ours_pack / v['median_s']:.3f}"
            if section == "unpack" and name != "nixcache unpack":
                ratio = f"{c['unpack'][loc]['nixcache unpack']['median_s'] / v['median_s']:.2f}"
            cell = name.replace("|", "\\|")
            L.append(f"| {cell} | {loc} | {ms(v['median_s'])} | {ms(v['min_s'])}-{ms(v['max_s'])} | {v['runs']} "
                     f"| {ms(v['cpu_median_s'])} | {mib(v['maxrss_kib'])} | {ratio} |")
        ab = c["archive_bytes"]
        rp = c["repack"]["nixcache pack (re-pack)"]["median_s"]
        L += ["", "Archives: " + ", ".join(f"{k} {v/2**10:,.0f} KiB" for k, v in ab.items()) + ".", "",
              f"Targets: re-pack <= 50 ms: {verdict(rp <= 0.05)} ({ms(rp)})."]
        for loc, un in c["unpack"].items():
            ours = un["nixcache unpack"]["median_s"]
            L.append(f"On {loc}: unpack <= all-symlinks GNU tar: {verdict(ours <= un['GNU tar -x all-symlinks (zstd)']['median_s'])} "
                     f"(vs zstd), {verdict(ours <= un['GNU tar -x all-symlinks (plain)']['median_s'])} (vs plain); "
                     f"<= 2x raw loop: {verdict(ours <= 2 * un['raw loop']['median_s'])}; "
                     f"vs crane inherit: x{un['crane: zstd -d | tar -x']['median_s'] / ours:.0f} faster.")
    pairs = list(old_pairs(r))
    if pairs:
        L += ["", "## This build against --old-bin-dir (same suites, interleaved; ratio = new / old)", "",
              "| suite | fs | command | new | old | new / old | CPU new / old | RSS new / old |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for suite, loc, name, new, old in pairs:
            L.append(f"| {suite} | {loc} | {name} | {ms(new['median_s'])} | {ms(old['median_s'])} "
                     f"| {new['median_s'] / old['median_s']:.3f} | {new['cpu_median_s'] / old['cpu_median_s']:.3f} "
                     f"| {new['maxrss_kib'] / old['maxrss_kib']:.3f} |")
    if "wrapper" in r:
        w = r["wrapper"]
        base = w["cargo build (no wrapper)"]
        L += ["", "## Wrapper: full corpus build, clean target, `--offline` (runs per configuration: "
              f"{base['runs']})", "",
              "| configuration | wall | overhead | CPU (user+sys) | CPU overhead | target <= 2 % |",
              "| --- | --- | --- | --- | --- | --- |"]
        for name, v in w.items():
            ow = v["median_s"] / base["median_s"] - 1
            oc = v["cpu_median_s"] / base["cpu_median_s"] - 1
            L.append(f"| {name} | {v['median_s']:.1f} s | {ow*100:+.1f} % | {v['cpu_median_s']:.1f} s | {oc*100:+.1f} % "
                     f"| {'' if v is base else verdict(ow <= 0.02)} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
