#!/usr/bin/env python3
"""Benchmark `infra-scale plan`: whole-process wall time and peak memory.

Prints, for the prototype's prod invocation and for synthetic plans of 20, 200 and 2,000
workloads (each with replicas, requests, limits and an HPA), the median wall time over
repeated runs and the peak resident memory of the process; then the time per workload at each
size, to show that time grows linearly. For reference it also times `node -e 0` (the start-up
cost alone of the Node prototype) when node is installed.

Peak memory comes from GNU time (/usr/bin/time) when it is installed.

Usage: scripts/bench-plan.py [--runs N] [--binary PATH]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROD = [
    "plan", "--dry-run", "--target=prod", "--namespace=assistant",
    "--workload=Deployment:web:6", "--workload=Deployment:api:4",
    "--hpa=min:4,max:12,cpu:65",
    "--req=web:cpu=500m,mem=1Gi", "--lim=web:cpu=1,mem=2Gi",
    "--req=api:cpu=400m,mem=1Gi", "--lim=api:cpu=1,mem=2Gi",
]


def synthetic(n):
    args = ["plan", "--dry-run", "--target=prod", "--namespace=assistant", "--hpa=min:2,max:8,cpu:70"]
    for i in range(n):
        args += [
            f"--workload=Deployment:svc-{i:04d}:{2 + i % 5}",
            f"--req=svc-{i:04d}:cpu={100 + i % 400}m,mem={128 + i % 512}Mi",
            f"--lim=svc-{i:04d}:cpu=1,mem=2Gi",
        ]
    return args


def run_once(argv, cwd, env):
    """Wall time (s) and peak RSS (KiB) of one process, measured with wait4.

    posix_spawn (not fork) so that the child's peak RSS is the benchmarked program's own, not
    the Python interpreter's copied at fork time.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(old)
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"benchmark run failed with exit code {code}: {' '.join(argv[:6])} ...")
    return elapsed, usage.ru_maxrss


def peak_rss_kib(argv, env):
    """Peak RSS of the program itself, from GNU time (a fork from Python would count Python's)."""
    gnu_time = "/usr/bin/time"
    if not os.path.exists(gnu_time):
        return None
    with tempfile.TemporaryDirectory() as cwd:
        res = subprocess.run([gnu_time, "-f", "%M"] + argv, cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        return int(res.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def measure(argv, runs, env):
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(5):  # warm the page cache and the CPU clock
            run_once(argv, cwd, env)
        samples = [run_once(argv, cwd, env) for _ in range(runs)]
    times = sorted(t for t, _ in samples)
    return statistics.median(times), peak_rss_kib(argv, env)


def instructions(argv, env):
    """Instructions executed (valgrind callgrind): a figure that does not depend on machine load."""
    with tempfile.TemporaryDirectory() as cwd:
        out = os.path.join(cwd, "cg.out")
        res = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
                             cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in res.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split(":")[-1].strip().replace(",", ""))
    return None


def mib(kib):
    return "n/a (no /usr/bin/time)" if kib is None else f"{kib / 1024:5.1f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "infra-scale"))
    a = ap.parse_args()
    if not os.environ.get("BENCH_NO_BUILD"):
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env["SOURCE_DATE_EPOCH"] = "1760140800"
    binary = a.binary

    print(f"# infra-scale plan benchmark ({a.runs} runs each, median wall time, peak RSS)")
    med, rss = measure([binary] + PROD, a.runs, env)
    print(f"prototype prod plan (2 workloads): median {med * 1000:.2f} ms, peak {mib(rss)}  (goal <= 5 ms)")
    node = shutil.which("node")
    if node:
        nmed, _ = measure([node, "-e", "0"], min(a.runs, 11), env)
        print(f"reference: `node -e 0` alone: median {nmed * 1000:.1f} ms ({nmed / med:.0f}x the whole infra-scale run)")

    per = {}
    for n in (20, 200, 2000):
        runs = a.runs if n < 2000 else max(5, a.runs // 3)
        med, rss = measure([binary] + synthetic(n), runs, env)
        per[n] = med / n
        goal = "  (goal <= 150 ms, <= 50 MiB)" if n == 2000 else ""
        print(f"{n:>5} workloads: median {med * 1000:8.2f} ms, peak {mib(rss)}, {med / n * 1e6:7.1f} us/workload{goal}")
    if shutil.which("valgrind"):
        prod = instructions([binary] + PROD, env)
        big = instructions([binary] + synthetic(2000), env)
        if prod and big:
            print(f"instructions (callgrind, load-independent): prod plan {prod / 1e6:.1f} M, 2000 workloads {big / 1e6:.0f} M")
    t = {n: per[n] * n for n in per}
    slope_small = (t[200] - t[20]) / 180 * 1e6
    slope_large = (t[2000] - t[200]) / 1800 * 1e6
    print(f"marginal cost per workload: {slope_small:.1f} us (20 -> 200), {slope_large:.1f} us (200 -> 2000); "
          f"linear growth means these two are about equal")


if __name__ == "__main__":
    main()
