#!/usr/bin/python3
"""Tests of the reference evaluator against independent float64 / PyTorch
computations. Uses the tiny shipped models.

    /usr/bin/python3 models/reference/test_reference.py
"""

import os
import subprocess
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from w4a4ref import quant  # noqa: E402
from w4a4ref.hadamard import hadamard, seeded_signs  # noqa: E402
from w4a4ref.loader import load_decoder  # noqa: E402
from w4a4ref.perplexity import windows  # noqa: E402

ZOO = os.path.join(HERE, "..", "zoo")
TINY = ["tiny_baseline", "tiny_dr_sink"]


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def rtn_loop(x, bits, clip):
    """Element by element in float64 with Python's round-half-even."""
    qmax = 2 ** (bits - 1) - 1
    out = np.zeros_like(x)
    for i, row in enumerate(x):
        s = np.float32(np.float32(clip) * np.float32(np.abs(row).max()) / np.float32(qmax))
        for j, v in enumerate(row):
            out[i, j] = 0.0 if s == 0 else np.float32(min(max(round(float(np.float32(v / s))), -qmax - 1), qmax) * s)
    return out


class Quantizers(unittest.TestCase):
    def test_rtn_matches_scalar_loop(self):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((6, 33)).astype(np.float32)
        x[1] = 0.0                                  # all-zero row stays zero
        x[2, :4] = [3.5, -3.5, 0.5, 7.0]            # exact ties at x / s = 0.5, 3.5
        for bits, clip in ((4, 1.0), (4, 0.9), (3, 1.0), (8, 1.0)):
            got = quant.rtn(torch.from_numpy(x), bits, clip).numpy()
            np.testing.assert_array_equal(got, rtn_loop(x, bits, clip))

    def test_gptq_with_identity_hessian_is_rtn(self):
        w = torch.randn(16, 64, generator=torch.Generator().manual_seed(2))
        np.testing.assert_allclose(quant.gptq(w, torch.eye(64), 4).numpy(), quant.rtn(w, 4).numpy(), rtol=0, atol=1e-6)

    def test_gptq_beats_rtn_on_correlated_inputs(self):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(2048, 8, generator=g) @ torch.randn(8, 64, generator=g) + 0.1 * torch.randn(2048, 64, generator=g)
        w = torch.randn(32, 64, generator=g)
        h = (x.double().T @ x.double())
        for group in (0, 16):
            e_rtn = (x @ (w - quant.rtn_weight(w, 4, group)).T).norm()
            e_gptq = (x @ (w - quant.gptq(w, h, 4, group)).T).norm()
            self.assertLess(float(e_gptq), 0.8 * float(e_rtn))


class Windows(unittest.TestCase):
    def test_each_token_scored_once(self):
        for n, ctx, stride in ((1000, 256, 128), (256, 256, 64), (10, 256, 128), (1001, 100, 100)):
            scored = np.zeros(n, dtype=int)
            for i, (s, e, first) in enumerate(windows(n, ctx, stride)):
                if i == 0:
                    self.assertEqual(first, 0)
                scored[max(s, first):e] += 1
            np.testing.assert_array_equal(scored, 1)


class Hadamards(unittest.TestCase):
    def test_orders(self):
        for n in (12, 20, 28, 36, 64, 192, 768):
            h = hadamard(n)
            np.testing.assert_array_equal(h @ h.T, n * np.eye(n))

    @unittest.skipUnless(os.environ.get("W4A4_HADAMARD_DUMP"), "set W4A4_HADAMARD_DUMP (ctest does)")
    def test_same_matrices_as_runtime(self):
        """The C++ runtime and this reference build identical matrices."""
        orders = [12, 20, 24, 28, 36, 44, 60, 64, 192, 320, 768]
        out = subprocess.run([os.environ["W4A4_HADAMARD_DUMP"]] + [str(n) for n in orders],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        pos = 0
        for n in orders:
            self.assertEqual(int(out[pos]), n)
            runtime = np.array([[1.0 if c == "+" else -1.0 for c in row] for row in out[pos + 1:pos + 1 + n]])
            np.testing.assert_array_equal(runtime, hadamard(n), err_msg="order %d" % n)
            pos += n + 1

    def test_signs(self):
        s = seeded_signs(0, 1000)
        self.assertTrue(set(np.unique(s)) <= {-1.0, 1.0})
        self.assertTrue(400 < (s > 0).sum() < 600)


@unittest.skipUnless(all(os.path.exists(os.path.join(ZOO, m, "model.onnx")) for m in TINY), "tiny models missing")
class FunctionPreservation(unittest.TestCase):
    """Every fp transform keeps the logits (DESIGN.md: the first test of every
    transform), against the PyTorch model built from the ONNX file."""

    def check(self, name, **transforms):
        model, _ = load_decoder(os.path.join(ZOO, name))
        cfg = model.cfg
        g = torch.Generator().manual_seed(5)
        ids = torch.randint(3, cfg.vocab_size, (2, 48), generator=g)
        ids[:, 0] = 1
        calib = [torch.randint(3, cfg.vocab_size, (1, 64), generator=g) for _ in range(4)]
        with torch.no_grad():
            ref = model(ids)
            p = quant.params_from_decoder(model)
            q = quant.QuantConfig(wbits=16, abits=0, **transforms)
            hooks = quant.quantize(p, cfg, q, calib)
            got = quant.forward(p, cfg, ids, hooks)
        err = rel(got, ref)
        self.assertLessEqual(err, 1e-4, "%s %s: %.2e" % (name, transforms, err))
        return err

    def test_plain_forward(self):
        for name in TINY:
            self.assertLessEqual(self.check(name), 1e-5)

    def test_fold_norms(self):
        for name in TINY:
            self.check(name, fold_norms=True)

    def test_smoothquant(self):
        for name in TINY:
            for alpha in (0.0, 0.5, 1.0):
                self.check(name, smooth=alpha)

    def test_rotations(self):
        for name in TINY:
            for mode in ("readers", "full"):
                for seed in (0, 7):
                    self.check(name, rotate=mode, seed=seed)

    def test_register_folding(self):
        # Constant fp KV prefix (the default) and register rows in the
        # residual stream compute the same function.
        for fold in (True, False):
            self.check("tiny_dr_sink", fold_registers=fold)
            self.check("tiny_dr_sink", rotate="full", fold_registers=fold)

    def test_smoothquant_then_rotation(self):
        self.check("tiny_dr_sink", smooth=0.5, rotate="full")


class InterleavedRope(unittest.TestCase):
    def test_equals_half_rope_with_permuted_qk_rows(self):
        """Interleaved RoPE on q/k rows reordered (2i <- i, 2i+1 <- i + d/2
        within each head) is the half-split RoPE model: Decoder and the
        functional reference both."""
        sys.path.insert(0, os.path.join(HERE, ".."))
        from zoo.w4a4zoo.model import Decoder, ModelConfig
        torch.manual_seed(0)
        cfg = ModelConfig(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=96, max_seq=64, registers=2)
        half = Decoder(cfg).eval()
        inter = Decoder(ModelConfig(**dict(cfg.to_dict(), rope_interleaved=True))).eval()
        d = cfg.head_dim
        perm = torch.stack([torch.arange(d // 2), torch.arange(d // 2) + d // 2], dim=-1).flatten()
        state = half.state_dict()
        for name in list(state):
            if name.endswith(("wq.weight", "wk.weight")):
                w = state[name]
                state[name] = w.reshape(-1, d, w.shape[-1])[:, perm].reshape(w.shape)
        inter.load_state_dict(state)
        ids = torch.randint(3, cfg.vocab_size, (2, 20))
        with torch.no_grad():
            ref = half(ids)
            self.assertLess(rel(inter(ids), ref), 1e-5)
            p = quant.params_from_decoder(inter)
            got = quant.forward(p, inter.cfg, ids, quant.Hooks(None, cfg.registers))
            self.assertLess(rel(got, ref), 1e-5)


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main(verbosity=2)
