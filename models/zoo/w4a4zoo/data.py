"""Tokenization of the corpus splits.

A text is tokenized line by line: every non-empty line is encoded with the
SentencePiece model (no BOS/EOS) and the ids are concatenated. The C++ runtime
tokenizes evaluation text the same way.
"""

import hashlib
import os

import numpy as np
import sentencepiece as spm


def load_tokenizer(path):
    return spm.SentencePieceProcessor(model_file=path)


def encode_text(sp, text):
    ids = []
    for line in text.split("\n"):
        if line.strip():
            ids.extend(sp.encode(line))
    return ids


def split_tokens(sp, tokenizer_path, corpus_dir, split, cache_dir):
    """Token ids of a split as a uint16 array, cached by tokenizer and text hash."""
    path = os.path.join(corpus_dir, split + ".txt")
    with open(path, "rb") as f:
        raw = f.read()
    with open(tokenizer_path, "rb") as f:
        key = hashlib.sha256(f.read() + raw).hexdigest()[:16]
    os.makedirs(cache_dir, exist_ok=True)
    cache = os.path.join(cache_dir, "%s-%s.npy" % (split, key))
    if os.path.exists(cache):
        return np.load(cache)
    ids = np.array(encode_text(sp, raw.decode("utf-8")), dtype=np.uint16)
    np.save(cache, ids)
    return ids
