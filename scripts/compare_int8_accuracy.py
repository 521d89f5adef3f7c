"""Compares `host eval` reports of one model's fp32 export and its int8 forms, image by image
(called by scripts/bench-int8-accuracy.sh).

Usage: compare_int8_accuracy.py LABEL FP32_REPORT NAME=REPORT...   (report folders of `host eval`)

Prints one markdown row per int8 form: 5-class accuracy and QWK (from each report's
metrics.json) and their change from fp32 in points, then the paired view over the images both
graded (predictions.csv): how many predicted classes changed, how many images only fp32 got
right and how many only the int8 form did, the exact two-sided McNemar p of those two counts,
and the largest change of any class probability. Standard library only.
"""
import csv
import json
import math
import os
import sys


def metrics(report):
    with open(os.path.join(report, "metrics.json")) as f:
        return json.load(f)


def predictions(report):
    with open(os.path.join(report, "predictions.csv"), newline="") as f:
        return {r["path"]: r for r in csv.DictReader(f) if r["predicted"] != ""}


def mcnemar(b, c):
    """Exact two-sided McNemar p: the binomial tail of min(b, c) of b + c at 1/2, doubled."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def main(label, fp32_report, *forms):
    ref_m, ref_p = metrics(fp32_report), predictions(fp32_report)
    classes = [k for k in next(iter(ref_p.values())) if k.startswith("p_")]
    print(f"| {label} | fp32 | {len(ref_p)} | {ref_m['accuracy']:.4f} | | {ref_m['qwk']:.4f} | | | | | | |")
    for form in forms:
        name, report = form.split("=", 1)
        m, p = metrics(report), predictions(report)
        both = [k for k in ref_p if k in p]
        right = lambda r: r["predicted"] == r["label"]
        changed = sum(ref_p[k]["predicted"] != p[k]["predicted"] for k in both)
        only_fp32 = sum(right(ref_p[k]) and not right(p[k]) for k in both)
        only_int8 = sum(right(p[k]) and not right(ref_p[k]) for k in both)
        dp = max(abs(float(ref_p[k][c]) - float(p[k][c])) for k in both for c in classes)
        print(
            f"| {label} | {name} | {len(both)} | {m['accuracy']:.4f} "
            f"| {100 * (m['accuracy'] - ref_m['accuracy']):+.2f} | {m['qwk']:.4f} "
            f"| {100 * (m['qwk'] - ref_m['qwk']):+.2f} | {changed} | {only_fp32} | {only_int8} "
            f"| {mcnemar(only_fp32, only_int8):.3f} | {dp:.3f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
