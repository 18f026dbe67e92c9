#!/usr/bin/env python3
"""scripts/plot_bench.py - PNGs from a scripts/bench.sh results folder.

    python3 scripts/plot_bench.py bench-results/<date>
    python3 scripts/plot_bench.py --prover build/run     (prover.png only: scripts/run.sh)

Reads the CSVs bench.sh wrote and draws, next to them:
  prover.png   the prover trace at the largest scale measured (where allocators differ most):
               wall time over the floor (first proof and steady state), kernel time and minor
               page faults per proof, peak RSS over the peak-live bound
  scaling.png  the same ratios at every scale measured (1x, 4x, 16x)
  alloc.png    ns per allocation call against size, one thread and every CPU
  wipe.png     nalloc_wipe against memset and explicit_bzero, GB/s against size
Any input that is missing is skipped with a note. Needs matplotlib.
"""
import csv
import glob
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

MIB = 1 << 20


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def prover_summaries(folder):
    """{scale: rows} from prover-x<scale>-summary.csv."""
    found = {}
    for path in glob.glob(os.path.join(folder, "prover-x*-summary.csv")):
        m = re.search(r"prover-x(\d+)-summary\.csv$", path)
        if m:
            found[int(m.group(1))] = read_csv(path)
    return dict(sorted(found.items()))


def modes_in_order(rows):
    seen = []
    for r in rows:
        if r["mode"] not in seen:
            seen.append(r["mode"])
    return seen


def value(rows, mode, phase, field):
    for r in rows:
        if r["mode"] == mode and r["phase"] == phase:
            return float(r[field])
    return float("nan")


def machine_line(folder):
    path = os.path.join(folder, "machine.txt")
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    cpu = re.search(r"model name\s*:\s*(.*)", text)
    cpus = re.search(r"cpus: (\d+)", text)
    mem = re.search(r"MemTotal:\s*(\d+)", text)
    parts = []
    if cpu:
        parts.append(cpu.group(1).strip())
    if cpus:
        parts.append(cpus.group(1) + " CPUs")
    if mem:
        parts.append("%.0f GiB" % (int(mem.group(1)) / (1 << 20)))
    return ", ".join(parts)


def plot_prover(folder, summaries):
    scale = max(summaries)
    rows = summaries[scale]
    modes = modes_in_order(rows)
    x = range(len(modes))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8))
    width = 0.4
    for i, (phase, label) in enumerate((("first", "first proof"), ("steady", "steady state"))):
        offs = [v + (i - 0.5) * width for v in x]
        axes[0].bar(offs, [value(rows, m, phase, "wall_x_floor") for m in modes], width,
                    label=label)
        axes[1].bar(offs, [value(rows, m, phase, "sys_s") * 1e3 for m in modes], width,
                    label=label)
        axes[2].bar(offs, [max(value(rows, m, phase, "minflt"), 0.5) for m in modes], width,
                    label=label)
    axes[0].axhline(1.0, color="black", linewidth=0.8)
    axes[0].set_ylabel("wall time / floor")
    axes[0].set_title("proof time relative to the floor")
    axes[1].set_ylabel("ms of system CPU time per proof")
    axes[1].set_title("kernel time (page faults, mapping)")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("minor page faults per proof")
    axes[2].set_title("page faults (0 drawn as 0.5)")
    rss = [max(value(rows, m, "first", "rss_x_live"), value(rows, m, "steady", "rss_x_live"))
           for m in modes]
    axes[3].bar(list(x), rss, 0.6, color="tab:green")
    axes[3].axhline(1.0, color="black", linewidth=0.8)
    axes[3].axhline(1.1, color="gray", linewidth=0.8, linestyle="--")
    axes[3].set_ylabel("peak RSS / peak live bytes")
    axes[3].set_title("memory over the lower bound (dashed: +10%)")
    for ax in axes:
        ax.set_xticks(list(x))
        ax.set_xticklabels(modes, rotation=35, ha="right")
    axes[0].legend()
    live = value(rows, modes[0], "first", "peak_live_bytes") / MIB
    fig.suptitle("prover-shaped trace at %dx (peak live %.0f MiB) - %s"
                 % (scale, live, machine_line(folder)))
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "prover.png"), dpi=110)
    plt.close(fig)


def plot_scaling(folder, summaries):
    scales = list(summaries)
    modes = modes_in_order(summaries[scales[0]])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, phase, title in ((axes[0], "first", "first proof"),
                             (axes[1], "steady", "steady state")):
        for m in modes:
            ys = [value(summaries[s], m, phase, "wall_x_floor") for s in scales]
            ax.plot(scales, ys, marker="o", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xticks(scales)
        ax.set_xticklabels(["%dx" % s for s in scales])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xlabel("trace size (heights multiplied)")
        ax.set_ylabel("wall time / floor")
        ax.set_title(title)
    axes[1].legend(fontsize=8)
    lives = ", ".join("%dx: %.0f MiB"
                      % (s, value(summaries[s], modes[0], "first", "peak_live_bytes") / MIB)
                      for s in scales)
    fig.suptitle("scaling (peak live %s) - %s" % (lives, machine_line(folder)))
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "scaling.png"), dpi=110)
    plt.close(fig)


def plot_alloc(folder, rows):
    rows = [r for r in rows if r["bench"] == "alloc"]
    threads = sorted({int(r["threads"]) for r in rows})
    panels = [(op, t) for op in ("alloc", "pair") for t in threads]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.5), squeeze=False)
    for ax, (op, t) in zip(axes[0], panels):
        for alloc in sorted({r["allocator"] for r in rows}):
            pts = sorted((int(r["size"]), float(r["ns_per_call"])) for r in rows
                         if r["allocator"] == alloc and r["op"] == op and int(r["threads"]) == t)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=alloc)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("size (bytes)")
        ax.set_ylabel("ns per call (as one thread sees it)")
        ax.set_title("%s, %d thread%s" % ("malloc+free pair" if op == "pair" else "allocation", t,
                                          "" if t == 1 else "s"))
        ax.legend(fontsize=8)
    fig.suptitle("allocation cost (blocks not touched) - %s" % machine_line(folder))
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "alloc.png"), dpi=110)
    plt.close(fig)


def plot_wipe(folder, rows):
    rows = [r for r in rows if r["bench"] == "wipe"]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for op in ("memset", "explicit_bzero", "nalloc_wipe"):
        pts = sorted((int(r["size"]), float(r["bytes_per_s"]) / 1e9) for r in rows if r["op"] == op)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=op)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes zeroed")
    ax.set_ylabel("GB/s")
    ax.set_title("the witness wipe against memset (same buffer)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "wipe.png"), dpi=110)
    plt.close(fig)
    return True


def main(argv):
    prover_only = len(argv) == 3 and argv[1] == "--prover"
    if prover_only:
        argv = argv[:1] + argv[2:]
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        sys.stderr.write("usage: plot_bench.py [--prover] <results folder>\n")
        return 2
    folder = argv[1]
    made = []
    summaries = prover_summaries(folder)
    if summaries:
        plot_prover(folder, summaries)
        made.append("prover.png")
        if len(summaries) > 1:
            plot_scaling(folder, summaries)
            made.append("scaling.png")
    else:
        sys.stderr.write("plot_bench: no prover-x*-summary.csv in %s\n" % folder)
    if prover_only:
        return 0 if made else 1
    alloc_csv = os.path.join(folder, "alloc.csv")
    if os.path.exists(alloc_csv):
        rows = read_csv(alloc_csv)
        plot_alloc(folder, rows)
        made.append("alloc.png")
        if plot_wipe(folder, rows):
            made.append("wipe.png")
    else:
        sys.stderr.write("plot_bench: no alloc.csv in %s\n" % folder)
    sys.stderr.write("plot_bench: wrote %s in %s\n" % (", ".join(made) or "nothing", folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
