"""Sliding-window perplexity exactly as DESIGN.md defines it.

Windows of `ctx` tokens advance by `stride`; each is fed as
[register prefix (inside the model)][BOS][window tokens]; a token is scored
by the first window that contains it (the first window scores all its tokens);
BOS and register positions are never scored. NLL accumulates in float64.
"""

import math
import time

import numpy as np
import torch


def windows(n, ctx, stride):
    """(start, end, first_scored) for every window over n tokens."""
    if ctx <= 0 or stride <= 0 or stride > ctx:
        raise ValueError("need 0 < stride <= ctx, got ctx=%d stride=%d" % (ctx, stride))
    start, scored_until = 0, 0
    while start < n:
        end = min(start + ctx, n)
        yield start, end, scored_until
        scored_until = end
        if end == n:
            break
        start += stride


@torch.no_grad()
def perplexity(logits_fn, ids, bos_id, ctx, stride, max_tokens=None, progress=None):
    """logits_fn(LongTensor [1, 1 + L]) -> float tensor [1, 1 + L, vocab]."""
    ids = np.asarray(ids, dtype=np.int64)
    if max_tokens:
        ids = ids[:max_tokens]
    if len(ids) == 0:
        raise ValueError("no tokens to score")
    nll, count, t0 = 0.0, 0, time.time()
    all_windows = list(windows(len(ids), ctx, stride))
    for i, (start, end, first) in enumerate(all_windows):
        x = torch.from_numpy(np.concatenate([[bos_id], ids[start:end]]))[None]
        logp = torch.log_softmax(logits_fn(x)[0].double(), dim=-1)
        targets = torch.from_numpy(ids[start:end])
        j0 = max(first - start, 0)
        picked = logp[j0:end - start].gather(1, targets[j0:, None])
        nll -= picked.sum().item()
        count += end - start - j0
        if progress:
            progress(i + 1, len(all_windows))
    mean = nll / count
    return {"tokens": count, "mean_nll": mean, "ppl": math.exp(mean), "seconds": time.time() - t0}
