"""The model zoo: every trained model's configuration, seed and schedule."""

from .model import LossConfig, ModelConfig

MAIN = dict(max_seq=512, vocab_size=4096, hidden=256, layers=6, heads=4, kv_heads=4, head_dim=64, ffn=768)
TINY = dict(max_seq=512, vocab_size=4096, hidden=64, layers=2, heads=2, kv_heads=2, head_dim=32, ffn=192, tied=True)

DR_SINK_LOSS = dict(reg_hinge_weight=0.05, reg_margin=10.0, tok_hinge_weight=0.05, tok_margin=4.0)
QAT_LOSS = dict(qat_act_bits=4, qat_weight_bits=4, kurtosis_weight=0.01, kurtosis_target=1.8)

# steps x batch x seq tokens; `init` names a model to fine-tune from.
TRAINED = {
    "tiny_baseline": dict(model=ModelConfig(**TINY), loss=LossConfig(), steps=600, batch=16, seq=128,
                          lr=3e-3, seed=1),
    "tiny_dr_sink": dict(model=ModelConfig(**TINY, registers=2), loss=LossConfig(**DR_SINK_LOSS), steps=600,
                         batch=16, seq=128, lr=3e-3, seed=1),
    "tiny_qat_kurtosis": dict(model=ModelConfig(**TINY), loss=LossConfig(**QAT_LOSS), steps=200, batch=16,
                              seq=128, lr=1e-3, seed=2, init="tiny_baseline"),
    "baseline": dict(model=ModelConfig(**MAIN), loss=LossConfig(), steps=900, batch=16, seq=256,
                     lr=2e-3, seed=1),
    "dr_sink": dict(model=ModelConfig(**MAIN, registers=4), loss=LossConfig(**DR_SINK_LOSS), steps=900,
                    batch=16, seq=256, lr=2e-3, seed=1),
    "qat_kurtosis": dict(model=ModelConfig(**MAIN), loss=LossConfig(**QAT_LOSS), steps=200, batch=16,
                         seq=256, lr=5e-4, seed=2, init="baseline"),
}
