"""Compares the x86 and aarch64 runs of `edge` (called by scripts/build-edge-arm.sh).

Usage: compare_edge_runs.py CHECK_X86 CHECK_ARM SCREEN_X86 SCREEN_ARM [TOL] (JSON lines each)

`edge check` lines must be identical (integer decode and gate arithmetic; the floats it prints
come from the same f32 operations). `edge screen` lines must agree on every field but the
probabilities and score, which may differ by at most TOL (tract's aarch64 and x86 kernels sum
in different orders; TOL defaults to 1e-5). Exit status 1 on any difference.
"""
import json
import sys

TOL = 1e-5
NUMERIC = {"probabilities", "score"}


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main(check_x86, check_arm, screen_x86, screen_arm, tol=TOL):
    tol = float(tol)
    ok = True
    cx, ca = lines(check_x86), lines(check_arm)
    if cx != ca:
        ok = False
        print(f"edge check differs:\n  x86 {cx}\n  arm {ca}")
    else:
        print(f"edge check: {len(cx)} images, x86 and aarch64 identical")
    sx, sa = lines(screen_x86), lines(screen_arm)
    if len(sx) != len(sa):
        print(f"edge screen: {len(sx)} x86 lines vs {len(sa)} aarch64 lines")
        return 1
    worst = 0.0
    for a, b in zip(sx, sa):
        rest_a = {k: v for k, v in a.items() if k not in NUMERIC}
        rest_b = {k: v for k, v in b.items() if k not in NUMERIC}
        if rest_a != rest_b:
            ok = False
            print(f"edge screen differs on {a.get('file')}:\n  x86 {rest_a}\n  arm {rest_b}")
        pa = a.get("probabilities", []) + ([a["score"]] if "score" in a else [])
        pb = b.get("probabilities", []) + ([b["score"]] if "score" in b else [])
        if len(pa) != len(pb):
            ok = False
            print(f"edge screen: {a.get('file')} has different outputs")
            continue
        for u, v in zip(pa, pb):
            worst = max(worst, abs(u - v))
    findings = [l.get("finding") for l in sx]
    print(f"edge screen: {len(sx)} images {findings}, max |p_x86 - p_aarch64| = {worst:.3e} "
          f"(tolerance {tol})")
    ok = ok and worst <= tol
    print("x86 and aarch64 agree" if ok else "FAIL: x86 and aarch64 disagree")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
