#!/usr/bin/env python3
"""The report of bench/crane-e2e.sh (the end-to-end inherit benchmark), and the store path names
it uses (bench.py's, so both benchmarks name store paths alike).

    crane_e2e.py store-path STORE NAME   prints STORE/<32 nixbase32 characters>-NAME
    crane_e2e.py report --out DIR --work DIR
        reads DIR/samples.tsv, checks.tsv, rounds.tsv and meta.tsv (written by crane-e2e.sh), writes
        DIR/results.json and DIR/summary.md, and prints the summary.

Every percentage is a step's median wall time over the median of cargo's own build in the same
run, same file system, same profile (variant a, "cargo alone"); the CPU percentages likewise with
CPU times (user+sys of the step's processes), which other people's load on a shared machine
disturbs far less than wall times. Sums ("added", "total") are taken per round, then the median
over rounds.
"""

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import machine_info, ms, store_path, verdict  # noqa: E402

VARIANTS = {
    "cargo": ("a. cargo alone", ["build"]),
    "crane": ("b. crane use-zstd", ["inherit", "build", "install"]),
    "nixcache": ("c. cargo-nixcache", ["unpack", "freshen", "env", "build", "pack"]),
}
# The steps a variant adds to cargo's own build, on the inherit side and in all.
INHERIT = {"crane": ["inherit"], "nixcache": ["unpack", "freshen", "env"]}
ADDED = {"crane": ["inherit", "install"], "nixcache": ["unpack", "freshen", "env", "pack"]}
STEP_NAMES = {
    ("crane", "inherit"): "inheritCargoArtifacts (zstd -d | tar -x)",
    ("crane", "install"): "prepareAndInstallCargoArtifactsDir (use-zstd)",
    ("nixcache", "unpack"): "cargo-nixcache unpack",
    ("nixcache", "freshen"): "stale-binary guard",
    ("nixcache", "env"): "eval \"$(cargo-nixcache env)\"",
    ("nixcache", "pack"): "cargo-nixcache pack",
    ("cargo", "build"): "cargo build",
    ("crane", "build"): "cargo build",
    ("nixcache", "build"): "cargo build (through the wrapper)",
}
TARGET = 0.05  # issue 8: everything we add <= 5 % of cargo's own build


def read_tsv(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def stats(values: list) -> dict:
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


def analyse(samples: list, checks: list, rounds_info: list) -> dict:
    """{(fs, profile): {...}} from the measured (not warm-up) rounds."""
    groups = {}
    for s in samples:
        if s["round"].startswith("w"):
            continue
        g = groups.setdefault((s["fs"], s["profile"]), {})
        g.setdefault((s["variant"], s["step"]), {})[int(s["round"])] = (int(s["wall_us"]) / 1e6, int(s["cpu_us"]) / 1e6)
    out = {}
    for (fs, profile), g in groups.items():
        base = stats([w for w, _ in g[("cargo", "build")].values()])["median"]
        base_cpu = statistics.median(c for _, c in g[("cargo", "build")].values())
        rounds = sorted(g[("cargo", "build")])
        steps = {}
        for (variant, step), per_round in g.items():
            st = stats([w for w, _ in per_round.values()])
            st["cpu_median"] = statistics.median(c for _, c in per_round.values())
            st["of_cargo"] = st["median"] / base
            st["cpu_of_cargo"] = st["cpu_median"] / base_cpu
            steps[f"{variant}/{step}"] = st
        sums = {}
        for variant, (_, names) in VARIANTS.items():
            for label, subset in [("inherit side", INHERIT.get(variant)), ("added", ADDED.get(variant)), ("total", names)]:
                if not subset:
                    continue
                per_round = [sum(g[(variant, n)][r][0] for n in subset) for r in rounds]
                st = stats(per_round)
                st["of_cargo"] = st["median"] / base
                st["cpu_median"] = statistics.median(sum(g[(variant, n)][r][1] for n in subset) for r in rounds)
                st["cpu_of_cargo"] = st["cpu_median"] / base_cpu
                st["steps"] = subset
                sums[f"{variant}/{label}"] = st
            # What the variant costs beyond cargo alone, its own build's difference included:
            # per round, this variant's total minus cargo alone's build of the same round.
            if variant != "cargo":
                extra = [sum(g[(variant, n)][r][0] for n in names) - g[("cargo", "build")][r][0] for r in rounds]
                st = stats(extra)
                st["of_cargo"] = st["median"] / base
                st["cpu_median"] = statistics.median(
                    sum(g[(variant, n)][r][1] for n in names) - g[("cargo", "build")][r][1] for r in rounds)
                st["cpu_of_cargo"] = st["cpu_median"] / base_cpu
                sums[f"{variant}/beyond cargo alone"] = st
        busy = [int(x["busy_pct"]) for x in rounds_info
                if x["fs"] == fs and x["profile"] == profile and not x["round"].startswith("w")]
        out[(fs, profile)] = {"cargo_build_median_s": base, "cargo_build_cpu_median_s": base_cpu,
                              "rounds": len(rounds), "busy_before_rounds_pct": busy, "steps": steps, "sums": sums}
    for (fs, profile), res in out.items():
        by_round = {}
        for c in checks:
            if c["fs"] == fs and c["profile"] == profile:
                by_round.setdefault(c["round"], {})[c["variant"]] = c
        identical = [r for r, v in by_round.items() if len({x["binary_sha256"] for x in v.values()}) == 1 and len(v) == 3]
        differing = {r: {k: x["binary_sha256"][:12] for k, x in v.items()} for r, v in by_round.items() if r not in identical}
        units = sorted({int(x["compiled_units"]) for v in by_round.values() for x in v.values()})
        distinct_binaries = len({x["binary_sha256"] for v in by_round.values() for x in v.values()})
        res["checks"] = {"rounds_checked": len(by_round), "identical_rounds": len(identical),
                         "differing": differing, "compiled_units_seen": units,
                         "distinct_binaries": distinct_binaries}
    return out


def render(res: dict, meta: dict, machine: dict) -> str:
    m = machine
    L = ["# cargo-nixcache: end-to-end inherit, crane use-zstd vs cargo-nixcache vs cargo alone", "",
         f"{m['date']}; {m['nproc']} CPUs ({m['cpu']}), {m['mem_total_kib']//1024} MiB, kernel {m['kernel']}; "
         f"nice {meta['nice']}; load {meta['loadavg_start']} at start, {meta['loadavg_end']} at end; "
         f"{m['rustc']}; {m['tar']}; {m['zstd']}; git {m['git_head']} (+{m['git_dirty_files']} modified tracked "
         f"files in src/, wrapper/); {meta['nixcache_version']}; crane {meta['crane_commit']} ({meta['crane_src']}); "
         f"{meta['elapsed_s']} s.", ""]
    L += [f"- {k[3:]}: `{v}`" for k, v in meta.items() if k.startswith("fs_")]
    L += [f"- stale-binary guard: `{meta['freshen']}`" + (f" (`{meta['freshen_body'].strip()}`)" if meta.get("freshen_body") else "")]
    for key in sorted(k for k in meta if k.endswith("_build_ms")):
        p = key[len("deps_"):-len("_build_ms")]
        L.append(f"- deps ({p}): built in {int(meta[key])/1000:.0f} s; target {int(meta[f'deps_{p}_target_bytes'])/2**20:.0f} MiB, "
                 f"{int(meta[f'deps_{p}_target_entries']):,} entries; crane's target.tar.zst "
                 f"{int(meta[f'deps_{p}_crane_archive_bytes'])/2**20:.1f} MiB, ours {int(meta[f'deps_{p}_nixcache_archive_bytes'])/2**10:.0f} KiB")
    for (fs, profile), r in res.items():
        base = r["cargo_build_median_s"]
        busy = r["busy_before_rounds_pct"]
        L += ["", f"## {profile}, {fs}: {r['rounds']} rounds (cargo alone's build: {ms(base)}, CPU {ms(r['cargo_build_cpu_median_s'])})", "",
              f"Machine busy in the second before each round: {', '.join(f'{b} %' for b in busy)}.", "",
              "| variant | step | median | min-max | % of cargo's build | CPU | CPU % of cargo's |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
        for variant, (title, names) in VARIANTS.items():
            for i, n in enumerate(names):
                s = r["steps"][f"{variant}/{n}"]
                L.append(f"| {title if i == 0 else ''} | {STEP_NAMES[(variant, n)]} | {ms(s['median'])} "
                         f"| {ms(s['min'])}-{ms(s['max'])} | {s['of_cargo']*100:.1f} % | {ms(s['cpu_median'])} "
                         f"| {s['cpu_of_cargo']*100:.1f} % |")
            for label in ["inherit side", "added", "total", "beyond cargo alone"]:
                s = r["sums"].get(f"{variant}/{label}")
                if s is None or (variant == "cargo" and label == "total"):
                    continue
                what = {"inherit side": "inherit side (" + " + ".join(INHERIT.get(variant, [])) + ")",
                        "added": "**added: " + " + ".join(ADDED.get(variant, [])) + "**",
                        "total": "total", "beyond cargo alone": "total - cargo alone's build"}[label]
                L.append(f"| | {what} | {ms(s['median'])} | {ms(s['min'])}-{ms(s['max'])} | {s['of_cargo']*100:.1f} % "
                         f"| {ms(s['cpu_median'])} | {s['cpu_of_cargo']*100:.1f} % |")
        ours, crane = r["sums"]["nixcache/added"], r["sums"]["crane/added"]
        beyond = r["sums"]["nixcache/beyond cargo alone"]
        c = r["checks"]
        L += ["", f"Target, everything we add <= {TARGET*100:.0f} % of cargo's build: {verdict(ours['of_cargo'] <= TARGET)} for "
              f"the added steps ({ours['of_cargo']*100:.1f} %; crane's: {crane['of_cargo']*100:.1f} %); "
              f"{verdict(beyond['of_cargo'] <= TARGET)} with our build's own difference too "
              f"({beyond['of_cargo']*100:+.1f} %). In CPU time: added steps {ours['cpu_of_cargo']*100:.1f} % "
              f"(crane's {crane['cpu_of_cargo']*100:.1f} %), with the build's difference {beyond['cpu_of_cargo']*100:+.1f} %.",
              f"Binaries identical across a/b/c: {c['identical_rounds']} of {c['rounds_checked']} rounds (warm-up included)"
              + (f"; differing: {c['differing']}" if c["differing"] else "")
              + f"; {c['distinct_binaries']} distinct binaries over all rounds (one per round expected). "
              f"Units compiled per build: {c['compiled_units_seen']} (1 = only the app)."]
    return "\n".join(L) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("store-path")
    sp.add_argument("store")
    sp.add_argument("name")
    rp = sub.add_parser("report")
    rp.add_argument("--out", required=True)
    rp.add_argument("--work", required=True)
    a = p.parse_args()
    if a.cmd == "store-path":
        print(store_path(Path(a.store), a.name))
        return
    out = Path(a.out)
    meta = {row["key"]: row["value"] for row in read_tsv(out / "meta.tsv")}
    samples, checks = read_tsv(out / "samples.tsv"), read_tsv(out / "checks.tsv")
    rounds_info = read_tsv(out / "rounds.tsv")
    res = analyse(samples, checks, rounds_info)
    machine = machine_info(Path(a.work), None, None)
    summary = render(res, meta, machine)
    (out / "results.json").write_text(json.dumps({
        "machine": machine, "meta": meta,
        "results": {f"{fs}/{profile}": r for (fs, profile), r in res.items()},
        "samples": samples, "checks": checks, "rounds": rounds_info}, indent=1) + "\n")
    (out / "summary.md").write_text(summary)
    print(summary)
    print(f"crane-e2e: results in {out}/results.json and {out}/summary.md", file=sys.stderr)
    # Variants that did not build the same thing were not compared: fail the run.
    bad = [f"{fs}/{profile}" for (fs, profile), r in res.items()
           if r["checks"]["differing"] or r["checks"]["compiled_units_seen"] != [1]]
    if bad:
        sys.exit(f"crane-e2e: error: the variants did not build the same thing ({', '.join(bad)}): "
                 "differing binaries or more than the app compiled; the timings compare nothing")


if __name__ == "__main__":
    main()
