"""Start-up time of the command line: `mlops-install --version` and `--help` (wall time of a whole process).

Prints the median and min of N runs for each, the bare interpreter for reference, and whether any heavy module
(textual, googleapiclient, kubernetes, google.cloud) was imported. Run: .venv/bin/python benchmarks/startup.py
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("STARTUP_RUNS", "15"))


def wall(argv: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False)
        times.append(time.perf_counter() - t)
    return times


def heavy(flag: str) -> list[str]:
    code = ("import sys\nfrom installer.cli import main\ntry:\n    main([%r])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY:' + ','.join(sorted({m.split('.')[0] if not m.startswith('google.cloud') else 'google.cloud' "
            "for m in sys.modules if m.split('.')[0] in ('textual', 'googleapiclient', 'kubernetes') "
            "or m.startswith('google.cloud')})))" % flag)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("HEAVY:")][-1]
    return [x for x in line[len("HEAVY:"):].split(",") if x]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compiled import ensure_compiled
    ensure_compiled()  # as `make` does: the project's modules byte-compiled, as an installed package's are
    exe = Path(sys.executable).parent / "mlops-install"
    cmds = {"python -c pass": [sys.executable, "-c", "pass"],
            "python -m installer --version": [sys.executable, "-m", "installer", "--version"],
            "python -m installer --help": [sys.executable, "-m", "installer", "--help"]}
    if exe.exists():
        cmds["mlops-install --version"] = [str(exe), "--version"]
        cmds["mlops-install --help"] = [str(exe), "--help"]
    print(f"start-up, {RUNS} runs each (wall time of the whole process)")
    for name, argv in cmds.items():
        ts = wall(argv)
        print(f"  {name:<32} median {statistics.median(ts) * 1000:6.0f} ms   min {min(ts) * 1000:6.0f} ms")
    for flag in ("--version", "--help"):
        h = heavy(flag)
        print(f"  heavy modules imported by {flag}: {', '.join(h) if h else 'none'}")
        if h:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
