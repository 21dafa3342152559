"""What the reports of bench/layered.sh and bench/devshell.sh share: cargo's units from its JSON
messages, and the `report --out DIR --work DIR` command line around a report's own analysis.

A unit is one compiler-artifact message of cargo, named by its output files relative to the target
dir (the same names mean the same unit: cargo's metadata hash is in them); compiled: the message
says `"fresh": false`.
"""

import argparse
import json
import sys
from pathlib import Path

from bench import machine_info
from crane_e2e import read_tsv


def package_name(pid: str) -> str:
    """`registry+https://...#serde@1.0.1` or `path+file:///x/app#0.1.0` (cargo >= 1.77), or
    `serde 1.0.1 (registry+...)` (older)."""
    if "#" in pid:
        frag = pid.rsplit("#", 1)[1]
        return frag.split("@", 1)[0] if "@" in frag else pid.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return pid.split(" ", 1)[0]


def units(logs: list) -> dict:
    """{unit key: {"package", "fresh"}} over the JSON message files, in order: a unit compiled
    by one command and found Fresh by a later one counts as compiled."""
    out = {}
    for path in logs:
        for line in Path(path).read_text().splitlines():
            if not line.startswith("{"):
                continue
            m = json.loads(line)
            if m.get("reason") != "compiler-artifact":
                continue
            key = tuple(sorted(f.split("/target/", 1)[-1] for f in m["filenames"]))
            u = out.setdefault(key, {"package": package_name(m["package_id"]), "fresh": True})
            u["fresh"] = u["fresh"] and m["fresh"]
    return out


def report_main(name: str, report) -> None:
    """`report --out DIR --work DIR`: reads DIR's meta.tsv, samples.tsv and rounds.tsv, calls
    report(out, meta, samples, busy, machine) -> (results, summary markdown, failure or None),
    writes results.json and summary.md, prints the summary, and exits with the failure."""
    p = argparse.ArgumentParser(prog=f"{name}.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--out", required=True)
    rp.add_argument("--work", required=True)
    a = p.parse_args()
    out = Path(a.out)
    meta = {row["key"]: row["value"] for row in read_tsv(out / "meta.tsv")}
    samples = read_tsv(out / "samples.tsv")
    busy = [int(x["busy_pct"]) for x in read_tsv(out / "rounds.tsv") if not x["round"].startswith("w")]
    machine = machine_info(Path(a.work), None, None)
    res, summary, failure = report(out, meta, samples, busy, machine)
    (out / "results.json").write_text(json.dumps({"machine": machine, "meta": meta, "results": res,
                                                  "samples": samples}, indent=1, default=str) + "\n")
    (out / "summary.md").write_text(summary)
    print(summary)
    print(f"{name}: results in {out}/results.json and {out}/summary.md", file=sys.stderr)
    if failure:
        sys.exit(f"{name}: error: {failure}")


def header(title: str, m: dict, meta: dict) -> list:
    """The summary's title and its line about the machine and the run."""
    return [f"# {title}", "",
            f"{m['date']}; {m['nproc']} CPUs ({m['cpu']}), kernel {m['kernel']}; nice {meta['nice']}; load "
            f"{meta['loadavg_start']} at start, {meta['loadavg_end']} at end; {m['rustc']}; git {m['git_head']} "
            f"(+{m['git_dirty_files']} modified tracked files in src/, wrapper/); {meta['nixcache_version']}; crane "
            f"{meta['crane_commit']}; profile {meta['profile']}; {meta['elapsed_s']} s.", ""]
