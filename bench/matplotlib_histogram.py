#!/usr/bin/env python3
"""Baseline renderer for side-by-side benchmarks: the latency histogram of the first
design document (the Python prototype plotq grew from: FastAPI, MongoDB and matplotlib),
drawn exactly as that prototype draws it (matplotlib Agg, 50 bins, mean/p95/p99 lines,
title, axis labels, legend, grid, 10x6 in at 100 dpi = 1000x600 PNG).

Usage (from the repository root):
  python3 bench/matplotlib_histogram.py --n 100000 [--reps 20] [--out baseline.png]
  python3 bench/matplotlib_histogram.py --input values.f64 [--reps 20] [--out baseline.png]

--input reads little-endian f64 values (the same file `plotq bench render --input` reads),
so both sides draw the same data. Without it, --n values are drawn from a lognormal
distribution (mean ~22 ms, long right tail) with the fixed random seed 1, so every run
draws the same values.

Prints one JSON line: {"renderer": "matplotlib", "n": ..., "png_bytes": ...,
"min_ms": ..., "median_ms": ..., "max_ms": ...}. Only the render (statistics, drawing,
PNG encoding) is timed; the interpreter start-up and data loading are not.

Needs: pip install matplotlib numpy
"""
import argparse
import io
import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def render(values, service="payment-service"):
    fig, ax = plt.subplots(figsize=(10, 6))
    p95 = np.percentile(values, 95)
    p99 = np.percentile(values, 99)
    mean_val = np.mean(values)
    ax.hist(values, bins=50, alpha=0.7, label="Latency Distribution")
    ax.axvline(mean_val, color="r", linestyle="--", linewidth=2, label=f"Mean: {mean_val:.2f}ms")
    ax.axvline(p95, color="orange", linestyle="--", linewidth=2, label=f"P95: {p95:.2f}ms")
    ax.axvline(p99, color="purple", linestyle="--", linewidth=2, label=f"P99: {p99:.2f}ms")
    ax.set_title(f'Latency Distribution for "{service}" (Last 10 Mins)')
    ax.set_xlabel("Latency (ms)")
    ax.set_ylabel("Frequency")
    ax.legend()
    ax.grid(True, which="both", linestyle="--", linewidth=0.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--input", help="little-endian f64 values")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", help="write the last PNG here")
    a = ap.parse_args()
    if a.input:
        values = np.fromfile(a.input, dtype="<f8")
    else:
        values = np.random.default_rng(1).lognormal(3.0, 0.5, a.n)
    render(values)  # warm-up: font cache, imports
    times, png = [], b""
    for _ in range(a.reps):
        t = time.perf_counter()
        png = render(values)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    if a.out:
        with open(a.out, "wb") as f:
            f.write(png)
    print(json.dumps({"renderer": "matplotlib", "n": int(len(values)), "png_bytes": len(png),
                      "min_ms": round(times[0], 2), "median_ms": round(times[len(times) // 2], 2),
                      "max_ms": round(times[-1], 2)}))


if __name__ == "__main__":
    main()
