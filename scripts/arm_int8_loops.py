"""Innermost loops of int8_product's sums_* functions in an aarch64 assembly file (see
scripts/arm-int8-loops.sh): instructions per iteration, products per iteration, and their ratio.

Products per instruction are counted from the arrangement: `sdot vA.4s, vB.16b, ...` 16,
`smull`/`smlal` on `.8b` 8 (`smull2`/`smlal2` on `.16b` 8), `mul`/`mla` on `.4s` 4, `fmla` on
`.4s` 4. A loop is the span from a label back to the branch that returns to it; every innermost
loop (one that holds no other) with a product is printed (the NEON kernel has two: pairs of
channel groups, and the odd group after them or every group when a weight is −128)."""
import re
import sys


def products(ins: str) -> int:
    op = ins.split()[0]
    if op == "sdot":
        return 16
    if op in ("smull", "smlal", "smull2", "smlal2") and ".8h" in ins:
        return 8
    if op in ("mul", "mla", "fmla") and ".4s" in ins:
        return 4
    return 0


def main(path: str) -> None:
    lines = open(path, encoding="utf-8").read().splitlines()
    starts = [(i, l[:-1]) for i, l in enumerate(lines) if re.match(r"^_\w+:$", l)]
    rows = []
    for k, (start, name) in enumerate(starts):
        kernel = re.search(r"int8_product\w*?(sums_\w+?)(17h|$)", name)
        if not kernel:
            continue
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        body = lines[start:end]
        labels = {m.group(1): i for i, l in enumerate(body) if (m := re.match(r"^(\.LBB\w+):", l))}
        loops = []
        for i, l in enumerate(body):
            m = re.match(r"^\s+(?:b(?:\.\w+)?|cbn?z\s+\w+,|tbn?z\s+\w+,\s*#\d+,)\s+(\.LBB\w+)", l)
            if m and labels.get(m.group(1), i) < i:
                loops.append((labels[m.group(1)], i))
        for first, last in loops:
            if any(first <= f and l <= last and (f, l) != (first, last) for f, l in loops):
                continue  # holds another loop: not innermost
            loop = [x.strip() for x in body[first + 1 : last + 1]]
            loop = [x for x in loop if x and not x.startswith((".", "//"))]
            made = sum(products(x) for x in loop)
            if made:
                ops = [x.split()[0] for x in loop if products(x)]
                mix = ", ".join(f"{ops.count(o)} {o}" for o in dict.fromkeys(ops))
                rows.append((kernel.group(1), mix, len(loop), made))
    if not rows:
        sys.exit(f"arm_int8_loops: no int8_product sums_* loop found in {path}")
    print("| kernel | multiplies in the loop | instructions / iteration | products / iteration | products / instruction |")
    print("|---|---|---|---|---|")
    for (kernel, mix, n, made), copies in _counted(rows):
        also = f" (×{copies} alike)" if copies > 1 else ""
        print(f"| {kernel}{also} | {mix} | {n} | {made} | {made / n:.2f} |")


def _counted(rows):
    """Each distinct row once, with how many times it occurs (unrolled copies of one loop)."""
    counts = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    return counts.items()


if __name__ == "__main__":
    main(sys.argv[1])
