#!/usr/bin/env python3
"""The report of bench/leaves.sh (leaf executables inside the archive, or linked).

    leaves.py report --out DIR --work DIR
        reads DIR/samples.tsv, sizes.tsv, rounds.tsv and meta.tsv, writes DIR/results.json and
        DIR/summary.md, prints the summary, and fails the run when a variant's output size
        differs between rounds (pack is deterministic: it must not).

Medians over the measured rounds (not the warm-up). Sizes: the output's apparent size (what its
NAR holds, give or take the NAR's framing), the bytes of artifacts/ and of the archive. Times: the
pack and the unpack of each variant (the fastest of a round's unpacks), and the extra unpack time of `inline` over `link` in the
same round as a share of cargo's own build of the local units in that round (the baseline).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ms  # noqa: E402
from crane_e2e import read_tsv, stats  # noqa: E402
from reporting import header, report_main  # noqa: E402

VARIANTS = {"inline": "inline (default)", "link": "--inline-executables none"}


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def unpack(steps: dict, variant: str) -> tuple:
    """A round's unpack of `variant`: the fastest of its unpacks (wall, with that one's CPU)."""
    return min(t for (v, step), t in steps.items() if v == variant and step.startswith("unpack"))


def analyse(samples: list, sizes: list) -> tuple:
    per = {}  # project -> round -> (variant, step) -> (wall s, cpu s)
    for s in samples:
        if not s["round"].startswith("w"):
            per.setdefault(s["project"], {}).setdefault(s["round"], {})[(s["variant"], s["step"])] = \
                (int(s["wall_us"]) / 1e6, int(s["cpu_us"]) / 1e6)
    size = {}  # project -> variant -> [rows]
    for row in sizes:
        if not row["round"].startswith("w"):
            size.setdefault(row["project"], {}).setdefault(row["variant"], []).append(row)
    res, problems = {}, []
    for project, rounds in per.items():
        r = {"baseline": {k: stats([x[("cargo", "build")][k] for x in rounds.values()]) for k in (0, 1)}}
        for v in VARIANTS:
            rows = size[project][v]
            distinct = {(x["output_bytes"], x["archive_bytes"]) for x in rows}
            if len(distinct) > 1:
                problems.append(f"{project} {v}: outputs of different sizes {sorted(distinct)}")
            r[v] = {
                "output_bytes": int(rows[0]["output_bytes"]),
                "artifacts_bytes": int(rows[0]["artifacts_bytes"]),
                "artifacts_files": int(rows[0]["artifacts_files"]),
                "archive_bytes": int(rows[0]["archive_bytes"]),
                "pack": {k: stats([x[(v, "pack")][k] for x in rounds.values()]) for k in (0, 1)},
                "unpack": {k: stats([unpack(x, v)[k] for x in rounds.values()]) for k in (0, 1)},
            }
        r["extra_unpack_over_build"] = stats([
            (unpack(x, "inline")[0] - unpack(x, "link")[0]) / x[("cargo", "build")][0]
            for x in rounds.values()])
        r["inline_over_link_bytes"] = r["inline"]["output_bytes"] / r["link"]["output_bytes"]
        res[project] = r
    return res, problems


def report(out: Path, meta: dict, samples: list, busy: list, m: dict):
    res, problems = analyse(samples, read_tsv(out / "sizes.tsv"))
    lines = header("Leaf executables inside the archive or linked (bench/leaves.sh)", m, meta)
    lines += [f"Medians over {len(busy) // max(len(res), 1)} rounds per project (machine {min(busy)}-{max(busy)} % "
              "busy before a round); wall time (CPU).", ""]
    lines += ["| project | variant | output | artifacts/ | archive | pack | unpack |",
              "|---|---|---|---|---|---|---|"]
    for project, r in res.items():
        for v, name in VARIANTS.items():
            x = r[v]
            lines.append(
                f"| {project} | {name} | {mb(x['output_bytes'])} | {mb(x['artifacts_bytes'])} in "
                f"{x['artifacts_files']} files | {mb(x['archive_bytes'])} | "
                f"{ms(x['pack'][0]['median'])} ({ms(x['pack'][1]['median'])}) | "
                f"{ms(x['unpack'][0]['median'])} ({ms(x['unpack'][1]['median'])}) |")
    lines += ["", "| project | target dir (built once) | cargo's build of the local units (baseline) | "
              "inline / link, output | inline's extra unpack / baseline |", "|---|---|---|---|---|"]
    for project, r in res.items():
        lines.append(
            f"| {project} | {mb(int(meta[project + '_target_bytes']))} | "
            f"{ms(r['baseline'][0]['median'])} (CPU {ms(r['baseline'][1]['median'])}) | "
            f"{r['inline_over_link_bytes']:.2f} | {100 * r['extra_unpack_over_build']['median']:.1f} % "
            f"({100 * r['extra_unpack_over_build']['min']:.1f}-{100 * r['extra_unpack_over_build']['max']:.1f}) |")
    if problems:
        lines += ["", "**Problems:** " + "; ".join(problems)]
    return res, "\n".join(lines) + "\n", "; ".join(problems) or None


if __name__ == "__main__":
    report_main("leaves", report)
