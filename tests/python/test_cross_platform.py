"""A short FP32 training run ends where the x86_64 run ended: the same numbers on every ISA and architecture.

The golden values were recorded on x86_64 (AVX-512, and identical with the ref and AVX2 kernels), with the passes
computing on theta +- eps z built aside and the update written once (they moved by a few float roundings from the
in-place +eps, -2 eps, eps - lr g moves before). The ZO perturbations are bit-identical everywhere (Philox + our own log/sincos), so only the summation order of the
FP32 kernels differs between platforms; the tolerance allows for that and nothing more.
"""

import hashlib

import numpy as np
import pytest

import elasticzo

GOLDEN_TRAIN_LOSS = 2.299963057041168
GOLDEN_WEIGHT_SUMS = {
    "conv1.weight": 2.5156847648322582,
    "conv2.weight": 1.4968994833761826,
    "fc1.weight": -4.275870164335174,
    "fc2.weight": -4.703290930350704,
    "fc3.weight": -0.3298244933539536,
}
GOLDEN_CONV1_FIRST = [-0.04188670217990875, 0.15238140523433685, 0.09468766301870346]
GOLDEN_FC3_FIRST = [0.08684967458248138, 0.09953996539115906, -0.03193642944097519]


def test_short_zo_feat_cls1_run_matches_the_x86_golden_values(mnist_train):
    train = mnist_train.subset(np.arange(256))
    model = elasticzo.models.lenet5(seed=0)
    tr = elasticzo.ElasticZO(model, method="zo-feat-cls1", lr_zo=1e-3, lr_bp=0.05, eps=1e-3, grad_clip=100.0,
                             seed=7)
    history = tr.fit(train, epochs=2, batch_size=64, progress=False)
    weights = model.state_dict()
    assert history[-1]["train_loss"] == pytest.approx(GOLDEN_TRAIN_LOSS, rel=1e-6)
    for name, total in GOLDEN_WEIGHT_SUMS.items():
        assert float(weights[name].astype(np.float64).sum()) == pytest.approx(total, abs=1e-4), name
    np.testing.assert_allclose(weights["conv1.weight"].ravel()[:3], GOLDEN_CONV1_FIRST, rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights["fc3.weight"].ravel()[:3], GOLDEN_FC3_FIRST, rtol=0, atol=1e-6)


# INT8 (NITI) is integer arithmetic throughout, so its weights must match bit for bit on every platform: a hash of
# every mantissa and exponent. The loss is reported in float64 from the int8 logits (libm's exp and log).
GOLDEN_INT8_TRAIN_LOSS = 2.494543969631195
GOLDEN_INT8_WEIGHTS_SHA256 = "a4ff79c5985b0d4702d3f13f65a9b33259376a3a632d1894529173b508be4c4f"


def _weights_sha256(model):
    """SHA-256 of every parameter (name and bytes, mantissas and exponents), in name order."""
    weights = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(weights[name]).tobytes())
    return digest.hexdigest()


def test_short_int8_full_bp_run_matches_the_x86_golden_weights_bit_for_bit(mnist_train):
    model = elasticzo.models.lenet5(seed=0, precision="int8")
    tr = elasticzo.ElasticZO(model, method="full-bp", seed=7)
    history = tr.fit(mnist_train.subset(np.arange(256)), epochs=2, batch_size=64, progress=False)
    assert _weights_sha256(model) == GOLDEN_INT8_WEIGHTS_SHA256
    assert history[-1]["train_loss"] == pytest.approx(GOLDEN_INT8_TRAIN_LOSS, rel=1e-12)


# ElasticZO-INT8 with the integer-only gradient (INT8*): the perturbation, the sign and every update are integer
# arithmetic, so the weights must match bit for bit on every platform.
GOLDEN_ZO_INT8_WEIGHTS_SHA256 = "0dbc945ca9cab196d585e586fd8b7da40382eeb6f3454b461b4b013761102138"


def test_short_zo_int8_intonly_run_matches_the_x86_golden_weights_bit_for_bit(mnist_train):
    model = elasticzo.models.lenet5(seed=0, precision="int8")
    tr = elasticzo.ElasticZO(model, method="zo-feat-cls1", seed=7, precision="int8-intonly")
    tr.fit(mnist_train.subset(np.arange(256)), epochs=2, batch_size=64, progress=False)
    assert _weights_sha256(model) == GOLDEN_ZO_INT8_WEIGHTS_SHA256
