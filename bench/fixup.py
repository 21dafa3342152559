#!/usr/bin/env python3
"""The report of bench/fixup.sh (what nixpkgs' fixup phase adds to a deps derivation).

    fixup.py report --out DIR --work DIR
        reads DIR/samples.tsv, sizes.tsv, rounds.tsv and meta.tsv, writes DIR/results.json and
        DIR/summary.md, prints the summary, and fails the run when a fixup changed the size of an
        output or when a round's outputs of one variant differ in which files the fixup changed.

Medians over the measured rounds (not the warm-up). The fixup's steps are summed per round, then
the median taken; every ratio is against the install step of the same variant (the output's
making) in the same round, and the fixup of ours against crane's in the same round.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ms  # noqa: E402
from crane_e2e import read_tsv, stats  # noqa: E402
from reporting import header, report_main  # noqa: E402

VARIANTS = {"crane": "crane use-zstd", "nixcache": "cargo-nixcache"}
FIXUP = ["chmod", "patchELF", "auditTmpdir", "notEmulated", "patchShebangs", "strip", "postFixup"]


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def analyse(samples: list, sizes: list) -> tuple:
    per = {}  # variant -> round -> step -> (wall s, cpu s)
    for s in samples:
        if s["round"].startswith("w"):
            continue
        per.setdefault(s["variant"], {}).setdefault(s["round"], {})[s["step"]] = \
            (int(s["wall_us"]) / 1e6, int(s["cpu_us"]) / 1e6)
    size = {}  # variant -> round -> when -> row
    for row in sizes:
        if not row["round"].startswith("w"):
            size.setdefault(row["variant"], {}).setdefault(row["round"], {})[row["when"]] = row
    res, problems = {}, []
    for v, rounds in per.items():
        steps = {st: {k: stats([r[st][k] for r in rounds.values()]) for k in (0, 1)}
                 for st in ["install"] + FIXUP}
        fix_wall = [sum(r[st][0] for st in FIXUP) for r in rounds.values()]
        fix_cpu = [sum(r[st][1] for st in FIXUP) for r in rounds.values()]
        ratio = [sum(r[st][0] for st in FIXUP) / r["install"][0] for r in rounds.values()]
        cpu_ratio = [sum(r[st][1] for st in FIXUP) / max(r["install"][1], 1e-6) for r in rounds.values()]
        sz = size.get(v, {})
        before = [int(x["before"]["bytes"]) for x in sz.values()]
        after = [int(x["after"]["bytes"]) for x in sz.values()]
        changed = {(x["after"]["changed_files"], x["after"]["changed_bytes"]) for x in sz.values()}
        if any(b != a for b, a in zip(before, after)):
            problems.append(f"{v}: the fixup changed the output's size")
        if len(changed) > 1:
            problems.append(f"{v}: the rounds' fixups changed different files: {sorted(changed)}")
        any_round = next(iter(sz.values()))
        res[v] = {
            "steps": {st: {"wall": steps[st][0], "cpu": steps[st][1]} for st in steps},
            "fixup_wall": stats(fix_wall), "fixup_cpu": stats(fix_cpu),
            "fixup_over_install": stats(ratio), "fixup_over_install_cpu": stats(cpu_ratio),
            "bytes_before": stats(before), "bytes_after": stats(after),
            "files": int(any_round["before"]["files"]), "elf_files": int(any_round["before"]["elf_files"]),
            "changed_files": int(any_round["after"]["changed_files"]),
            "changed_bytes": int(any_round["after"]["changed_bytes"]),
        }
    if "crane" in per and "nixcache" in per:
        common = sorted(set(per["crane"]) & set(per["nixcache"]))
        res["nixcache_over_crane_fixup"] = stats([
            sum(per["nixcache"][r][st][0] for st in FIXUP) / sum(per["crane"][r][st][0] for st in FIXUP)
            for r in common])
    return res, problems


def report(out: Path, meta: dict, samples: list, busy: list, m: dict):
    res, problems = analyse(samples, read_tsv(out / "sizes.tsv"))
    lines = header("The fixup phase on a deps output (bench/fixup.sh)", m, meta)
    lines += [f"Deps: the corpus built once as crane's buildDepsOnly ({int(meta['deps_build_ms']) / 1000:.0f} s "
              f"wall), target dir {mb(int(meta['deps_target_bytes']))} in {meta['deps_target_files']} files, "
              f"{meta['deps_elf_files']} of them ELF, {meta['deps_elf_linked']} linked (the others: objects a build "
              f"script compiled), each with the self rpath {meta['self_rpath']}; "
              f"{meta['patchelf']}. Medians over {len(busy)} rounds (machine {min(busy)}-{max(busy)} % busy "
              f"before a round).", ""]
    lines += ["| | install (baseline) | fixup, all steps | fixup / install | output | ELF files | "
              "files fixup changed |", "|---|---|---|---|---|---|---|"]
    for v, name in VARIANTS.items():
        if v not in res:
            continue
        r = res[v]
        lines.append(
            f"| {name} | {ms(r['steps']['install']['wall']['median'])} "
            f"(CPU {ms(r['steps']['install']['cpu']['median'])}) | {ms(r['fixup_wall']['median'])} "
            f"(CPU {ms(r['fixup_cpu']['median'])}) | {100 * r['fixup_over_install']['median']:.1f} % "
            f"(CPU {100 * r['fixup_over_install_cpu']['median']:.1f} %) | "
            f"{mb(r['bytes_before']['median'])} -> {mb(r['bytes_after']['median'])}, {r['files']} files | "
            f"{r['elf_files']} | {r['changed_files']} ({mb(r['changed_bytes'])}) |")
    lines += ["", "Fixup steps, median wall (CPU):", "",
              "| step | " + " | ".join(VARIANTS[v] for v in VARIANTS if v in res) + " |",
              "|---|" + "---|" * len([v for v in VARIANTS if v in res])]
    for st in FIXUP:
        lines.append(f"| {st} | " + " | ".join(
            f"{ms(res[v]['steps'][st]['wall']['median'])} ({ms(res[v]['steps'][st]['cpu']['median'])})"
            for v in VARIANTS if v in res) + " |")
    if "nixcache_over_crane_fixup" in res:
        lines += ["", f"Our output's fixup takes {res['nixcache_over_crane_fixup']['median']:.0f}x crane's "
                  "(median of the per-round ratios)."]
    if problems:
        lines += ["", "**Problems:** " + "; ".join(problems)]
    return res, "\n".join(lines) + "\n", "; ".join(problems) or None


if __name__ == "__main__":
    report_main("fixup", report)
