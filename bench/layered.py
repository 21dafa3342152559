#!/usr/bin/env python3
"""The report of bench/layered.sh (layered dependency derivations).

    layered.py report --out DIR --work DIR
        reads DIR/samples.tsv, rounds.tsv, meta.tsv and DIR/logs/ (cargo's JSON messages of every
        build, written by layered.sh) and layer 1's messages (in the state dir meta.tsv names),
        writes DIR/results.json and DIR/summary.md, prints the summary, and fails the run when the
        variants did not build the same units or a layered build that should reuse layer 1
        (layered, stable-vendor) compiled a unit layer 1 had.

Units as bench/reporting.py counts them. Every figure against the single deps derivation of the same round;
the medians over rounds, differences (saved) taken per round first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ms  # noqa: E402
from crane_e2e import stats  # noqa: E402
from reporting import header, report_main, units  # noqa: E402

COMMANDS = ["check", "build", "test"]
INHERIT = ["unpack", "freshen", "env"]
VARIANTS = {
    "single": "single deps derivation, from scratch",
    "layered": "layered: inherits layer 1",
    "own-vendor": "layered, layer 1 on its own vendor dir",
    "stable-vendor": "layered, layer 1 on its own vendor dir, stable vendor path",
}
# The variants that must reuse every unit of layer 1 (own-vendor is the control that does not).
REUSING = ["layered", "stable-vendor"]


def classify(us: dict, layer1: dict, new: set, local: set) -> dict:
    """The compiled units of one build by what they are."""
    l1_pkgs = {u["package"] for u in layer1.values()}
    c = {"compiled": 0, "fresh": 0, "new": 0, "layer1_units": 0, "layer1_other_features": 0,
         "layer1_lacks": 0, "local": 0}
    for key, u in us.items():
        if u["fresh"]:
            c["fresh"] += 1
            continue
        c["compiled"] += 1
        if u["package"] in local:
            c["local"] += 1
        elif u["package"] in new:
            c["new"] += 1
        elif key in layer1:
            c["layer1_units"] += 1
        elif u["package"] in l1_pkgs:
            c["layer1_other_features"] += 1
        else:
            c["layer1_lacks"] += 1
    return c


def analyse(out: Path, samples: list, meta: dict) -> dict:
    steps = {}
    for s in samples:
        steps.setdefault(s["variant"], {}).setdefault(int(s["round"]), {})[s["step"]] = \
            (int(s["wall_us"]) / 1e6, int(s["cpu_us"]) / 1e6)
    layer1_dir = Path(meta["layer1_shared_dir"])
    layer1 = units([layer1_dir / f"{c}.json" for c in COMMANDS])
    new = set(meta["new_packages"].split())
    local = {"corpus-app"}
    res = {"layer1": {"units": len(layer1), "build_s": int(meta["layer1_shared_build_ms"]) / 1e3,
                      "packages": len({u["package"] for u in layer1.values()})}}
    if "layer1_own_build_ms" in meta:
        res["layer1"]["own_vendor_build_s"] = int(meta["layer1_own_build_ms"]) / 1e3
    if "layer1_own_stable_build_ms" in meta:
        res["layer1"]["own_stable_build_s"] = int(meta["layer1_own_stable_build_ms"]) / 1e3
    per = {}
    for variant, rounds in steps.items():
        rows = {}
        for r, st in rounds.items():
            sums = {"inherit": sum(st.get(n, (0, 0))[0] for n in INHERIT),
                    "cargo": sum(st[n][0] for n in COMMANDS), "pack": st["pack"][0]}
            sums["total"] = sums["inherit"] + sums["cargo"] + sums["pack"]
            cpu = {"inherit": sum(st.get(n, (0, 0))[1] for n in INHERIT),
                   "cargo": sum(st[n][1] for n in COMMANDS), "pack": st["pack"][1]}
            cpu["total"] = cpu["inherit"] + cpu["cargo"] + cpu["pack"]
            us = units([out / "logs" / f"{r}-{variant}-{c}.json" for c in COMMANDS])
            rows[r] = {"steps": st, "wall": sums, "cpu": cpu, "units": us,
                       "classes": classify(us, layer1, new, local)}
        per[variant] = rows
    res["variants"] = {}
    for variant, rows in per.items():
        v = {"rounds": sorted(rows)}
        for kind in ["wall", "cpu"]:
            v[kind] = {k: stats([rows[r][kind][k] for r in rows]) for k in ["inherit", "cargo", "pack", "total"]}
        v["steps"] = {n: stats([rows[r]["steps"][n][0] for r in rows if n in rows[r]["steps"]])
                      for n in INHERIT + COMMANDS + ["pack"] if any(n in rows[r]["steps"] for r in rows)}
        v["classes"] = {r: rows[r]["classes"] for r in rows}
        if variant != "single":
            paired = [r for r in rows if r in per.get("single", {})]
            for kind in ["wall", "cpu"]:
                v[f"saved_{kind}"] = stats([per["single"][r][kind]["total"] - rows[r][kind]["total"] for r in paired])
                v[f"ratio_{kind}"] = stats([rows[r][kind]["total"] / per["single"][r][kind]["total"] for r in paired])
        res["variants"][variant] = v
    # Checks: the same units in the end, and nothing of layer 1 compiled again when reusing it.
    # Layer 1's units have the same keys (file names, metadata hashes) whichever vendor dir it
    # was built on: the hashes do not cover the source path.
    checks = {}
    for variant, r, row in [(v, r, row) for v in REUSING for r, row in per.get(v, {}).items()]:
        single = per["single"][r]["units"]
        missing = sorted(set(single) - set(row["units"]))
        extra = sorted(set(row["units"]) - set(single))
        # The workspace's own units rebuild when their sources differ (the stale-binary guard).
        again = sorted(k for k, u in row["units"].items() if not u["fresh"] and k in layer1 and u["package"] not in local)
        checks[f"{r}-{variant}"] = {
            "same_units": not missing and not extra, "missing": [list(k) for k in missing[:5]],
            "extra": [list(k) for k in extra[:5]], "layer1_compiled_again": [list(k) for k in again[:5]],
            "layer1_compiled_again_count": len(again)}
    res["checks"] = checks
    return res


def pct(x: float) -> str:
    return f"{x*100:.0f} %"


def present(res: dict):
    """(title, figures) of each variant the run has, in VARIANTS' order."""
    return [(title, res["variants"][v]) for v, title in VARIANTS.items() if v in res["variants"]]


def render(res: dict, meta: dict, machine: dict, busy: list) -> str:
    L = header("cargo-nixcache: layered deps derivations vs a single deps derivation", machine, meta)
    L += [f"- the change: `{meta['change_diff'].strip()}` (new crates: {meta['new_packages'].strip() or 'none'})",
         f"- layer 1: {meta['stable']}: {res['layer1']['units']} units of {res['layer1']['packages']} packages, "
         f"built once in {res['layer1']['build_s']:.0f} s"
         + "".join(f"; {res['layer1'][k]:.0f} s {what}" for k, what in
                   [("own_vendor_build_s", "on its own vendor dir"),
                    ("own_stable_build_s", "on its own vendor dir through the stable path")]
                   if k in res["layer1"]),
         f"- builds in {meta['work']}",
         f"- machine busy in the second before each round: {', '.join(f'{b} %' for b in busy)}", "",
         "Median over rounds; saved and ratio paired with the same round's single build.", "",
         "| variant | rounds | inherit (unpack+guard+env) | check+build+test | pack | total | CPU total | saved (wall) | saved (CPU) | total / single's |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for title, v in present(res):
        w, c = v["wall"], v["cpu"]
        saved = (f"{ms(v['saved_wall']['median'])} | {ms(v['saved_cpu']['median'])} | "
                 f"{pct(v['ratio_wall']['median'])} wall, {pct(v['ratio_cpu']['median'])} CPU") if "saved_wall" in v else "| |"
        inherit = ms(w["inherit"]["median"]) if w["inherit"]["max"] else "-"
        L.append(f"| {title} | {len(v['rounds'])} | {inherit} | {ms(w['cargo']['median'])} "
                 f"| {ms(w['pack']['median'])} | {ms(w['total']['median'])} ({ms(w['total']['min'])}-{ms(w['total']['max'])}) "
                 f"| {ms(c['total']['median'])} | {saved} |")
    L += ["", "Units compiled per build (cargo's compiler-artifact messages with `fresh: false`, over check, build and test):", "",
          "| variant | round | compiled | new crates | layer 1's units | layer 1's crates, other features | crates layer 1 lacks | local | fresh |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for title, v in present(res):
        for r, c in sorted(v["classes"].items()):
            L.append(f"| {title} | {r} | {c['compiled']} | {c['new']} | {c['layer1_units']} "
                     f"| {c['layer1_other_features']} | {c['layer1_lacks']} | {c['local']} | {c['fresh']} |")
    ok = all(c["same_units"] and c["layer1_compiled_again_count"] == 0 for c in res["checks"].values())
    L += ["", f"Checks: single and {' / '.join(REUSING)} end with the same units, and those compile none of layer 1's: "
          f"{'yes' if ok else 'NO'} in {len(res['checks'])} builds" + ("" if ok else f" ({res['checks']})") + "."]
    return "\n".join(L) + "\n"


def report(out: Path, meta: dict, samples: list, busy: list, machine: dict):
    res = analyse(out, samples, meta)
    bad = {r: c for r, c in res["checks"].items() if not c["same_units"] or c["layer1_compiled_again_count"]}
    failure = None
    if bad or not res["checks"]:
        failure = (f"the layered build did not build what the single one did, or compiled layer 1's units "
                   f"again: {bad}; the timings compare nothing")
    return res, render(res, meta, machine, busy), failure


if __name__ == "__main__":
    report_main("layered", report)
