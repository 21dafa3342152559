#!/usr/bin/env python3
"""Helpers and the report of bench/footprint.sh (the footprint of artifacts in the store and in
binary caches).

    footprint.py units LOG            cargo's units in a build log: `registry_compiled N`,
                                      `registry_fresh N`, `local_compiled N` lines
    footprint.py closure-size         stdin: `nix path-info -S --json` of one path; its closure size
    footprint.py nar-sum              stdin: `nix path-info --json` of paths; the sum of their NAR sizes
    footprint.py union-size           stdin: `nix path-info -S --json` of several paths (run with
                                      -S, each closure listed): NAR bytes of the union of closures
    footprint.py fetched ACCESS CACHE bytes of .nar files the HTTP access log shows served (200)
    footprint.py report --out DIR --work DIR
                                      DIR/samples.tsv and meta.tsv -> results.json, summary.md

Units as bench/reporting.py counts them; registry: a package from crates.io (vendored), local: a
path package (the project's own).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import header, report_main, units  # noqa: E402

MODES = ["use-zstd", "use-symlink", "use-nixcache"]
OUTPUTS = ["deps", "clippy", "test", "layered"]
OURS, REF = "use-nixcache", "use-zstd"
# The targets (ratios of ours to a crane mode, same run).
CONSUMER_MAX = 1.5   # consumers that install artifacts: NAR <= 1.5x use-zstd's
PUSHED_MAX = 1.2     # a deps output's compressed bytes in a cache <= 1.2x use-zstd's


def cmd_units(log: str) -> None:
    # A log may hold lines that are not cargo's JSON (the build's own output): units() skips
    # every line not starting with `{`; JSON it cannot parse is not cargo's either.
    lines = [l for l in Path(log).read_text(errors="replace").splitlines() if l.startswith("{")]
    ok = []
    for l in lines:
        try:
            json.loads(l)
            ok.append(l)
        except ValueError:
            pass
    tmp = Path(log + ".json")
    tmp.write_text("\n".join(ok) + "\n")
    us = units([tmp])
    tmp.unlink()
    local = set()
    for l in ok:
        m = json.loads(l)
        if m.get("reason") == "compiler-artifact" and m["package_id"].startswith("path+"):
            local.add(m["package_id"])
    # units() keys by file names; find each unit's package id again for local/registry.
    reg_c = reg_f = loc_c = 0
    local_names = {p.rsplit("#", 1)[1].split("@")[0] if "@" in p.rsplit("#", 1)[1]
                   else p.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] for p in local}
    for u in us.values():
        if u["package"] in local_names:
            loc_c += 0 if u["fresh"] else 1
        elif u["fresh"]:
            reg_f += 1
        else:
            reg_c += 1
    print(f"registry_compiled {reg_c}\nregistry_fresh {reg_f}\nlocal_compiled {loc_c}\nunits {len(us)}")


def path_infos(data) -> list:
    # nix path-info --json: a list (Nix 2.8-2.18) or an object keyed by path (2.19+).
    if isinstance(data, dict):
        return [dict(v, path=k) for k, v in data.items()]
    return data


def cmd_closure_size() -> None:
    infos = path_infos(json.load(sys.stdin))
    assert len(infos) == 1, infos
    print(infos[0]["closureSize"])


def cmd_nar_sum() -> None:
    print(sum(i["narSize"] for i in path_infos(json.load(sys.stdin))))


def cmd_union_size() -> None:
    paths = [i["path"] for i in path_infos(json.load(sys.stdin))]
    req = subprocess.run(["nix-store", "-q", "--requisites", *paths], check=True,
                         capture_output=True, text=True).stdout.split()
    infos = path_infos(json.loads(subprocess.run(["nix", "path-info", "--json", *req], check=True,
                                                 capture_output=True, text=True).stdout))
    print(sum(i["narSize"] for i in infos))


def cmd_fetched(access: str, cache: str) -> None:
    total = 0
    for m in re.finditer(r'"GET /(nar/[^ ]+) HTTP/1\.[01]" 200 ', Path(access).read_text()):
        total += (Path(cache) / m.group(1)).stat().st_size
    print(total)


# ---- the report ---------------------------------------------------------------------------------

def mb(b) -> str:
    if b is None or b == "":
        return ""
    return f"{b / 1e3:,.1f} kB" if b < 100_000 else f"{b / 1e6:,.1f} MB"


def ratio(a, b) -> str:
    return "" if a is None or not b else f"{a / b:.2f}x"


def report(out: Path, meta: dict, samples: list, busy, m: dict):
    v = {}
    refs = {}
    for s in samples:
        key = (s["project"], s["mode"], s["what"])
        if s["metric"] == "reference":
            refs.setdefault(key, []).append(s["value"])
            continue
        val = s["value"]
        v.setdefault(key, {})[s["metric"]] = int(val) if re.fullmatch(r"-?\d+", val) else val
    projects = list(dict.fromkeys(s["project"] for s in samples))
    modes = [x for x in MODES if any(k[1] == x for k in v)]
    comps = [c for c in ("zstd", "xz") if any(f"cache_{c}" in d for d in v.values())]
    lines = header("Footprint in the store and in binary caches (bench/footprint.sh)", m, meta)
    lines += [f"Nix: {meta['nix']}; ripgrep {meta['ripgrep']}; caches: {meta['compression_options']}. "
              "MB = 10^6 bytes. du: `du -sB1` (disk); NAR: `nix-store -q --size`; closure: NAR bytes "
              "of the closure; cache: the .nar.C file's bytes (narinfo FileSize).", ""]
    failures = []
    res = {"values": {"|".join(k): d for k, d in v.items()}, "references": {"|".join(k): r for k, r in refs.items()}}
    checks = []
    for p in projects:
        g = lambda mode, what, metric: v.get((p, mode, what), {}).get(metric)  # noqa: E731
        lines += [f"## {p}", ""]
        vend = v.get((p, "all", "vendor"), {})
        lines += [f"The vendor dir (cargoVendorDir): NAR {mb(vend.get('nar'))}; it is in the closure of every "
                  "output that references it.", ""]
        # a. per output and mode.
        cols = ["du (disk)", "du (apparent)", "files", "NAR", "closure", "paths", "closure w/o vendor"]
        for c in comps:
            cols += [f"{c} cache", f"{c} cache, closure"]
        lines += ["| output | mode | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
        for what in OUTPUTS:
            for mode in modes:
                d = v.get((p, mode, what), {})
                cells = [mb(d.get("du_disk")), mb(d.get("du_apparent")), str(d.get("files", "")),
                         mb(d.get("nar")), mb(d.get("closure")), str(d.get("closure_paths", "")),
                         mb(d.get("closure_no_vendor"))]
                for c in comps:
                    cells += [mb(d.get(f"cache_{c}")), mb(d.get(f"cache_{c}_closure"))]
                lines.append(f"| {what} | {mode} | " + " | ".join(cells) + " |")
        lines.append("")
        # b. ratios against use-zstd (and use-symlink) of the same run.
        lines += ["| output | metric | use-nixcache / use-zstd | use-symlink / use-zstd | use-nixcache / use-symlink | target |",
                  "|---|---|---:|---:|---:|---|"]
        metrics = [("du_disk", "du (disk)"), ("nar", "NAR"), ("closure", "closure"),
                   ("closure_no_vendor", "closure w/o vendor")] + \
                  [(f"cache_{c}", f"{c} cache") for c in comps] + [(f"cache_{c}_closure", f"{c} cache, closure") for c in comps]
        for what in OUTPUTS:
            for key, name in metrics:
                ours, ref, sym = g(OURS, what, key), g(REF, what, key), g("use-symlink", what, key)
                target = ""
                if what == "deps" and key == "nar" and sym:
                    ok = ours <= sym
                    target = f"deps <= use-symlink's: **{'met' if ok else 'missed'}**"
                    checks.append((p, what, key, "<= use-symlink", ours / sym, ok))
                elif what != "deps" and key == "nar" and ref:
                    ok = ours <= CONSUMER_MAX * ref
                    target = f"<= {CONSUMER_MAX}x use-zstd: **{'met' if ok else 'missed'}**"
                    checks.append((p, what, key, f"<= {CONSUMER_MAX}x use-zstd", ours / ref, ok))
                elif what == "deps" and key.startswith("cache_") and not key.endswith("closure") and ref:
                    ok = ours <= PUSHED_MAX * ref
                    target = f"<= {PUSHED_MAX}x use-zstd: **{'met' if ok else 'missed'}**"
                    checks.append((p, what, key, f"<= {PUSHED_MAX}x use-zstd", ours / ref, ok))
                lines.append(f"| {what} | {name} | {ratio(ours, ref)} | {ratio(sym, ref)} | {ratio(ours, sym)} | {target} |")
        lines.append("")
        # c. outputs together, and nix-store --optimise: deps and two consumers of it (siblings);
        # the layered chain deps -> clippy -> layered.
        lines += ["| mode | closure of | closure | store before optimise (du) | after | saved | saved % | files hard-linked |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for what, name in (("chain", "deps + clippy + test"), ("layered_chain", "deps -> clippy -> layered")):
            for mode in modes:
                d = v.get((p, mode, what), {})
                b, a = d.get("optimise_before"), d.get("optimise_after")
                saved = None if b is None or a is None else b - a
                lines.append(f"| {mode} | {name} | {mb(d.get('closure'))} | {mb(b)} | {mb(a)} | {mb(saved)} | "
                             f"{'' if not b else f'{100 * saved / b:.0f} %'} | {d.get('optimise_files', '')} |")
        lines.append("")
        # d. consumers' units, build times, substitution.
        lines += ["| mode | output | built in | registry units compiled | registry units Fresh |",
                  "|---|---|---:|---:|---:|"]
        for mode in modes:
            for what in OUTPUTS:
                d = v.get((p, mode, what), {})
                t = d.get("build_ms")
                lines.append(f"| {mode} | {what} | {'(kept)' if t == 0 else f'{t / 1000:.0f} s' if t else ''} | "
                             f"{d.get('registry_compiled', '')} | {d.get('registry_fresh', '')} |")
                if what != "deps" and d.get("registry_compiled"):
                    failures.append(f"{p} {mode} {what} compiled {d['registry_compiled']} registry units")
        lines.append("")
        subs = [mode for mode in modes if (p, mode, "substitute") in v]
        if subs:
            lines += ["Substituted over HTTP into an empty store (the zstd cache), then buildPackage there:", "",
                      "| mode | deps substituted in | bytes fetched | buildPackage in | registry units compiled | Fresh |",
                      "|---|---:|---:|---:|---:|---:|"]
            for mode in subs:
                s, pk = v[(p, mode, "substitute")], v.get((p, mode, "package"), {})
                lines.append(f"| {mode} | {s['deps_ms'] / 1000:.1f} s | {mb(s.get('fetched'))} | "
                             f"{s['package_ms'] / 1000:.1f} s | {pk.get('registry_compiled', '')} | {pk.get('registry_fresh', '')} |")
                if pk.get("registry_compiled") or not pk.get("registry_fresh"):
                    failures.append(f"{p} {mode}: buildPackage after substitution compiled "
                                    f"{pk.get('registry_compiled')} registry units, {pk.get('registry_fresh')} Fresh")
            lines.append("")
    if checks:
        lines += ["## Targets", "", "| project | output | figure | target | ratio | |", "|---|---|---|---|---:|---|"]
        for p, what, key, t, r, ok in checks:
            lines.append(f"| {p} | {what} | {key} | {t} | {r:.2f} | {'met' if ok else '**missed**'} |")
        lines.append("")
    res["targets"] = [dict(zip(["project", "output", "metric", "target", "ratio", "met"], c)) for c in checks]
    return res, "\n".join(lines) + "\n", "; ".join(failures) or None


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "units" and len(sys.argv) == 3:
        cmd_units(sys.argv[2])
    elif cmd == "closure-size":
        cmd_closure_size()
    elif cmd == "nar-sum":
        cmd_nar_sum()
    elif cmd == "union-size":
        cmd_union_size()
    elif cmd == "fetched" and len(sys.argv) == 4:
        cmd_fetched(sys.argv[2], sys.argv[3])
    elif cmd == "report":
        report_main("footprint", report)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
