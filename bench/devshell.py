#!/usr/bin/env python3
"""The report of bench/devshell.sh (entering a dev shell, and the first build in it).

    devshell.py report --out DIR --work DIR
        reads DIR/samples.tsv, rounds.tsv, meta.tsv and DIR/logs/ (cargo's JSON messages of each
        first build), writes DIR/results.json and DIR/summary.md, prints the summary, and fails
        the run when the variants of a round did not end with the same units or a filled target
        dir left more than the workspace's crate to compile.

Units as bench/reporting.py counts them. Medians over the measured rounds (not the warm-up); ratios against the
same round's `empty` build (the first build of a shell without the hook) where there is one, and
against `hook` for the other ways of filling the target dir.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ms  # noqa: E402
from crane_e2e import stats  # noqa: E402
from reporting import header, report_main, units  # noqa: E402

VARIANTS = {
    "hook": "shell hook: hydrate + env",
    "cp": "`cp -a` of the deps target dir",
    "crane": "crane's inheritCargoArtifacts (use-zstd)",
    "empty": "empty target dir (no hook)",
}
LOCAL = {"corpus-app"}


def analyse(out: Path, samples: list) -> dict:
    rows = {}
    for s in samples:
        if s["round"].startswith("w"):
            continue
        rows.setdefault(s["variant"], {}).setdefault(int(s["round"]), {})[s["step"]] = \
            (int(s["wall_us"]) / 1e6, int(s["cpu_us"]) / 1e6)
    res, checks = {}, {}
    unit_sets = {}
    for variant, per_round in rows.items():
        v = {"rounds": sorted(per_round), "compiled": {}, "compiled_nonlocal": {}}
        for r in per_round:
            us = units([out / "logs" / f"{r}-{variant}.json"])
            unit_sets.setdefault(r, {})[variant] = set(us)
            v["compiled"][r] = sum(not u["fresh"] for u in us.values())
            v["compiled_nonlocal"][r] = sorted({u["package"] for u in us.values() if not u["fresh"] and u["package"] not in LOCAL})
        for step in ["enter", "build", "reenter"]:
            have = [r for r in per_round if step in per_round[r]]
            if have:
                v[step] = stats([per_round[r][step][0] for r in have])
                v[step]["cpu_median"] = statistics.median(per_round[r][step][1] for r in have)
        v["enter_build"] = stats([per_round[r]["enter"][0] + per_round[r]["build"][0] for r in per_round])
        v["enter_build"]["cpu_median"] = statistics.median(
            per_round[r]["enter"][1] + per_round[r]["build"][1] for r in per_round)
        res[variant] = v
    # Paired ratios: each variant's figure over the same round's reference.
    for variant, v in res.items():
        for ref, step in [("empty", "build"), ("empty", "enter_build"), ("hook", "enter")]:
            if variant == ref or ref not in rows:
                continue
            paired = [r for r in rows[variant] if r in rows[ref]]
            if not paired:
                continue

            def fig(var, r):
                st = rows[var][r]
                return st["enter"][0] + st["build"][0] if step == "enter_build" else st[step][0]
            v[f"{step}_over_{ref}"] = stats([fig(variant, r) / fig(ref, r) for r in paired])
    for r, sets in unit_sets.items():
        same = len({frozenset(s) for s in sets.values()}) == 1
        only_local = all(res[v]["compiled_nonlocal"][r] == [] for v in sets if v != "empty")
        checks[r] = {"same_units": same, "only_local_compiled": only_local}
    return {"variants": res, "checks": checks}


def render(res: dict, meta: dict, machine: dict, busy: list) -> str:
    v = res["variants"]
    L = header("cargo-nixcache: entering a dev shell, and the first build in it", machine, meta)
    L += [f"- deps ({meta['profile']}, as buildDepsOnly): built in {int(meta['deps_build_ms'])/1000:.0f} s; target "
         f"{int(meta['deps_target_bytes'])/2**20:.0f} MiB, {int(meta['deps_target_entries']):,} entries; crane's "
         f"target.tar.zst {int(meta['crane_archive_bytes'])/2**20:.1f} MiB, ours {int(meta['nixcache_archive_bytes'])/2**10:.0f} KiB",
         f"- checkouts in {meta['work']}",
         f"- machine busy in the second before each round: {', '.join(f'{b} %' for b in busy)}", "",
         "Median (min-max) wall time; CPU is user+sys of the step's processes.", "",
         "| variant | rounds | enter | enter, CPU | enter / hook's | first `cargo build` | build, CPU | build / empty's | units compiled | enter + build / empty's |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant, title in VARIANTS.items():
        x = v.get(variant)
        if x is None:
            continue
        def ratio(key):
            if key not in x:
                return ""
            r = x[key]["median"]
            return f"{r:.2f}x" if key == "enter_over_hook" else f"{r*100:.1f} %"
        comp = sorted(set(x["compiled"].values()))
        L.append(f"| {title} | {len(x['rounds'])} | {ms(x['enter']['median'])} ({ms(x['enter']['min'])}-{ms(x['enter']['max'])}) "
                 f"| {ms(x['enter']['cpu_median'])} | {ratio('enter_over_hook')} "
                 f"| {ms(x['build']['median'])} ({ms(x['build']['min'])}-{ms(x['build']['max'])}) | {ms(x['build']['cpu_median'])} "
                 f"| {ratio('build_over_empty')} | {', '.join(map(str, comp))} | {ratio('enter_build_over_empty')} |")
    if "reenter" in v.get("hook", {}):
        x = v["hook"]["reenter"]
        L += ["", f"Entering again (hook, target dir filled and built in): {ms(x['median'])} ({ms(x['min'])}-{ms(x['max'])}), CPU {ms(x['cpu_median'])}."]
    ok = all(c["same_units"] and c["only_local_compiled"] for c in res["checks"].values())
    L += [f"Checks: the same units in every variant of a round, and only the workspace's crate compiled after "
          f"filling: {'yes' if ok else 'NO'} in {len(res['checks'])} rounds" + ("" if ok else f" ({res['checks']})") + "."]
    return "\n".join(L) + "\n"


def report(out: Path, meta: dict, samples: list, busy: list, machine: dict):
    res = analyse(out, samples)
    bad = {r: c for r, c in res["checks"].items() if not (c["same_units"] and c["only_local_compiled"])}
    failure = None
    if bad:
        failure = (f"{bad}: the variants did not build the same thing, or a filled target dir was not used; "
                   "the timings compare nothing")
    return res, render(res, meta, machine, busy), failure


if __name__ == "__main__":
    report_main("devshell", report)
