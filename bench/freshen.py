#!/usr/bin/env python3
"""What the stale-binary guard costs on the corpus, next to the baselines it must be small
against: spawning `true`, cargo's own "new code" build (the app crate edited, CARGO_INCREMENTAL=0
as crane sets it, every dependency Fresh), the `cargo metadata` calls a guard could make instead,
and the guard this one replaced. Driven by bench/freshen.sh; uses bench.py's runner (interleaved
rounds, each run timed by `measure`).

The workspaces are copies of the corpus app with its in-tree `vendor/` (186 crates, 8.7k files),
so the guard has to walk past them: `app` (with a copy of the target) for the builds, whose
`main.rs` each build edits; `app-same`, never edited, whose sources are the ones an artifacts
directory records (freshen keeps the app: digest only); `app-old` for the old guard, which touches
every vendored file (in `app` that would make the next build rerun every vendored build script).
A second artifacts directory records the digests of an edited `main.rs` (freshen touches the
app's files in `app`)."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Cmd, Loc, Runner, log, ms, store_path  # noqa: E402


def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--measure", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--old-bin", default="", help="a cargo-nixcache with the old guard, to time it too")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--build-rounds", type=int, default=5)
    a = p.parse_args()
    work, nc = Path(a.work), str(Path(a.bin_dir) / "cargo-nixcache")
    corpus = Path(a.corpus) / "app"
    if not (corpus / "target" / "debug").is_dir():
        raise SystemExit(f"bench: no built corpus at {corpus}; run /work/shared/bench-corpus.sh {a.corpus}")
    store = work / "store"
    store.mkdir()
    # Real copies: freshen writes mtimes, the builds rewrite the target.
    app = work / "app"
    sh(f"cp -a '{corpus}' '{app}'")
    app_same, app_old = work / "app-same", work / "app-old"
    for d in (app_same, app_old):
        sh(f"mkdir '{d}' && cd '{corpus}' && tar --exclude=./target -cf - . | tar -xf - -C '{d}'")
    main_rs = app / "src" / "main.rs"
    original = main_rs.read_text()
    nc_store = [nc, f"--store-dir={store}"]

    def pack(name: str) -> Path:
        t = work / f"t-{name}"
        sh(f"cp -al '{corpus / 'target'}' '{t}'")
        out = store_path(store, name)
        subprocess.run(nc_store + ["-q", "pack", "--target-dir", str(t), "--out", str(out),
                                   "--manifest-path", str(app_same / "Cargo.toml")], check=True)
        return out
    same = pack("same-sources")
    (app_same / "src" / "main.rs").write_text(original + "// edited\n")
    differ = pack("other-sources")
    (app_same / "src" / "main.rs").write_text(original)
    unpacked = work / "unpacked"
    subprocess.run(nc_store + ["-q", "unpack", str(same), "--target-dir", str(unpacked)], check=True)
    cargo = str(Path(subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                                    check=True).stdout.strip()) / "bin" / "cargo")
    env = {"CARGO_INCREMENTAL": "0", "CARGO_TARGET_DIR": None, "RUSTC_WRAPPER": None}
    log("warm-up: one untimed new-code build")
    edit = f"printf '// %s\\n' $(date +%s%N) >> '{main_rs}'"
    sh(edit)
    subprocess.run([cargo, "build", "--offline", "--locked", "-q"], cwd=app, env={**os.environ, "CARGO_INCREMENTAL": "0"},
                   check=True)

    runner = Runner(a.measure, store, work)
    loc = Loc("disk", work / "disk", delete_now=False)
    (loc.root / "runs").mkdir(parents=True)
    cmds = [
        Cmd("true", ["true"]),
        Cmd("freshen, same sources (kept)", nc_store + ["-q", "freshen", "--inherited", str(same)], cwd=str(app_same)),
        Cmd("freshen, app differs (touched)", nc_store + ["-q", "freshen", "--inherited", str(differ)], cwd=str(app)),
        Cmd("freshen, nothing inherited", nc_store + ["-q", "freshen"], cwd=str(app)),
        Cmd("cargo metadata --no-deps", [cargo, "metadata", "--no-deps", "--offline", "--format-version", "1"],
            cwd=str(app)),
        Cmd("cargo metadata (resolves)", [cargo, "metadata", "--offline", "--format-version", "1"], cwd=str(app)),
        Cmd("pack, re-pack without digests", nc_store + ["-q", "pack", "--target-dir", str(unpacked), "--out", "{OUT}"],
            cwd=str(work)),
        Cmd("pack, re-pack with digests", nc_store + ["-q", "pack", "--target-dir", str(unpacked), "--out", "{OUT}",
                                                       "--manifest-path", str(app / "Cargo.toml")], cwd=str(work)),
        Cmd("cargo build, new code", [cargo, "build", "--offline", "--locked", "-q"], [edit], runs=a.build_rounds,
            cwd=str(app), env=env),
    ]
    if a.old_bin:
        cmds.append(Cmd("old guard (metadata + whole-dir walk)", [a.old_bin, "-q", "freshen"], cwd=str(app_old)))
    started = time.time()
    results = runner.measure_suite("freshen on the corpus", cmds, a.rounds, loc)
    main_rs.write_text(original)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"results": results, "elapsed_s": round(time.time() - started),
           "loadavg_end": open("/proc/loadavg").read().split()[:3]}
    (out / "freshen.json").write_text(json.dumps(doc, indent=1) + "\n")
    build = results["cargo build, new code"]["median_s"]
    spawn = results["true"]["median_s"]
    lines = ["| command | median | cpu | vs `true` | share of the new-code build |", "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {ms(r['median_s'])} | {ms(r['cpu_median_s'])} | "
                     f"{r['median_s'] / spawn:.1f}x | {100 * r['median_s'] / build:.1f} % |")
    summary = "\n".join(lines) + "\n"
    (out / "freshen.md").write_text(summary)
    print(summary)
    log(f"results in {out}/freshen.json and {out}/freshen.md")


if __name__ == "__main__":
    main()
