#!/usr/bin/python3
"""Trains the SentencePiece BPE tokenizer (vocab 4096, with BOS/EOS and byte
fallback) on a deterministic subset of the training split.

    /usr/bin/python3 models/tokenizer/train_tokenizer.py \
        --corpus models/data/corpus --out models/tokenizer/w4a4c_bpe4096
"""

import argparse
import hashlib
import json
import os

import sentencepiece as spm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="folder with train.txt")
    ap.add_argument("--out", required=True, help="model prefix (writes PREFIX.model, PREFIX.vocab)")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--every", type=int, default=3, help="train on every N-th non-empty line")
    args = ap.parse_args()

    # The model records its input path: keep it a fixed path (not a temporary
    # directory) so that retraining reproduces the model file byte for byte.
    subset = os.path.join(args.corpus, "tokenizer-subset.txt")
    lines = 0
    with open(os.path.join(args.corpus, "train.txt"), encoding="utf-8") as src, \
            open(subset, "w", encoding="utf-8") as dst:
        for i, line in enumerate(ln for ln in src if ln.strip()):
            if i % args.every == 0:
                dst.write(line)
                lines += 1
    print("tokenizer: training BPE %d on %d lines" % (args.vocab_size, lines), flush=True)
    spm.SentencePieceTrainer.train(
        input=subset, model_prefix=args.out, model_type="bpe", vocab_size=args.vocab_size,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=0.9995,
        input_sentence_size=0, shuffle_input_sentence=False, max_sentence_length=16384,
        num_threads=2, split_digits=True, minloglevel=2)
    os.remove(subset)
    with open(args.out + ".model", "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    sp = spm.SentencePieceProcessor(model_file=args.out + ".model")
    info = {"vocab_size": sp.get_piece_size(), "bos_id": sp.bos_id(), "eos_id": sp.eos_id(),
            "unk_id": sp.unk_id(), "model_sha256": digest, "training_lines": lines}
    with open(args.out + ".json", "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print("tokenizer:", json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
