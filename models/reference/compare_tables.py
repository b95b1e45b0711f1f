#!/usr/bin/python3
"""Compares the compiled perplexity table (scripts/ppl-table.sh --json) with
the reference evaluator's fake-quant tables (docs/models/<model>-w4a4.json,
from evaluate.py --table --json) cell by cell, on the same tokens, and
prints a markdown table with the relative differences. Exits 1 when a cell
differs by more than --tol (the issue's 0.5%) or the token counts differ.

    scripts/ppl-table.sh models/zoo/dr_sink --max-tokens 16384 --json compiled.jsonl
    /usr/bin/python3 models/reference/compare_tables.py compiled.jsonl
"""

import argparse
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ROWS = ("FP32", "W4A4", "+SmoothQuant", "+QuaRot readers", "+QuaRot full")
REF_ROW = {"W4A4": "RTN"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("compiled", help="JSON lines from scripts/ppl-table.sh --json")
    ap.add_argument("--refs", default=os.path.join(ROOT, "docs", "models"))
    ap.add_argument("--tol", type=float, default=5e-3)
    args = ap.parse_args()
    with open(args.compiled) as f:
        compiled = [json.loads(line) for line in f if line.strip()]
    models = list(dict.fromkeys(r["model"] for r in compiled))
    print("| model | configuration | weights | compiled | reference | rel. diff |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    worst, bad = 0.0, 0
    for m in models:
        path = os.path.join(args.refs, m + "-w4a4.json")
        if not os.path.exists(path):
            print("no reference table %s" % path, file=sys.stderr)
            bad += 1
            continue
        with open(path) as f:
            ref = {(r["row"], r.get("weights", "fp32")): r for r in json.load(f)["results"]}
        for row in ROWS:
            for w in (("fp32",) if row == "FP32" else ("rtn", "gptq")):
                got = [r for r in compiled if r["model"] == m and r["row"] == row and r["weights"] == w]
                want = ref.get((REF_ROW.get(row, row), w))
                if not got or not want:
                    continue
                g = got[0]
                rel = abs(g["ppl"] - want["ppl"]) / want["ppl"]
                ok = rel <= args.tol and g["tokens"] == want["tokens"]
                worst = max(worst, rel)
                bad += not ok
                print("| %s | %s | %s | %.3f | %.3f | %.2e%s |" % (
                    m, row, w.upper() if w != "fp32" else "-", g["ppl"], want["ppl"], rel, "" if ok else " FAIL"))
    print("\nLargest relative difference %.2e; %d cell(s) outside %.1e." % (worst, bad, args.tol))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
