#!/usr/bin/python3
"""Writes the token ids of a UTF-8 text (tokenized line by line with the
model's SentencePiece tokenizer, exactly as w4a4-run and the reference
evaluator do) as whitespace-separated integers: the `calib=` file of
w4a4-calibrate, w4a4-smoothquant and w4a4-quantize-pipeline.

    /usr/bin/python3 models/reference/tokenize_ids.py test/data/calibration-sample.txt calib.ids
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from zoo.w4a4zoo.data import encode_text, load_tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "tokenizer", "w4a4c_bpe4096.model"))
    args = ap.parse_args()
    try:
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit("tokenize_ids.py: cannot read %s: %s" % (args.text, e))
    ids = encode_text(load_tokenizer(args.tokenizer), text)
    if not ids:
        sys.exit("tokenize_ids.py: %s holds no text" % args.text)
    with open(args.out, "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    print("%d ids -> %s" % (len(ids), args.out))


if __name__ == "__main__":
    main()
