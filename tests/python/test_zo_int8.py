"""ElasticZO-INT8's rules (int8/zo_int8.h, bound as elasticzo._core.int8_zo_* / int8_xent_*) against a NumPy
transcription written here from SPEC §5-6: the sparse perturbation on every ISA (weights at the clip bounds
included), the update's rounding, the integer-only log2 loss and both ternary gradients."""

import math

import numpy as np
import pytest

from elasticzo import _core
from test_int8_rules import np_round_shift, philox_words

KEY = (0x51ED, 0x2026)


# ---- the transcription ---------------------------------------------------------------------------------------

def np_zeta(n, key, stream, offset, r, p_zero):
    """u = ((w & 0xffff) (2r + 1)) >> 16 on [0, 2r]; zeroed when (w >> 16) < round(p_zero 2^16); zeta = u - r."""
    w = philox_words(n, key, stream, offset)
    u = ((w & 0xFFFF) * (2 * r + 1)) >> 16
    keep = (w >> 16) >= int(round(p_zero * 65536))
    return np.where(keep, u - r, 0)


def np_perturb(w, zeta, sign, shift):
    rounded = zeta if shift == 0 else np_round_shift(zeta, shift, "pseudo_stochastic").astype(np.int64)
    return np.clip(w.astype(np.int64) + sign * rounded, -127, 127).astype(np.int8)


def np_alpha(v, e, label, frac):
    """alpha_j in units of 2^-frac: floor((v_j - v_y) 47274 2^e 2^frac / 2^15), the exponent capped at 15 - frac."""
    d = (v.astype(np.int64) - int(v[label])) * 47274
    s = min(40, 15 - frac - min(max(e, -64), 15 - frac))
    return d >> s  # numpy's >> on int64 floors, as the C++ floor_shift


def np_exp2_table(frac):
    """2^(k / 2^frac) in Q30: products of the repeated integer square roots of 2, one per set bit of k."""
    root = [2 << 30]
    for _ in range(8):
        root.append(math.isqrt(root[-1] << 30))
    table = []
    for k in range(1 << frac):
        t = 1 << 30
        for b in range(frac):
            if k >> b & 1:
                t = (t * root[frac - b] + (1 << 29)) >> 30
        table.append(t)
    return table


def np_log2_row(v, e, label, frac):
    """The row's log2 S with frac fractional bits, in Python ints: terms 2^-20 below the largest dropped, the
    fractional exponents from the Q30 table, log2 digit by digit."""
    alpha = np_alpha(v, e, label, frac)
    top, table = int(alpha.max()), np_exp2_table(frac)
    s = 0
    for a in alpha:
        d = int(a) - top + (20 << frac)
        if d >= 0:
            s += table[d & ((1 << frac) - 1)] << (d >> frac)
    n = s.bit_length() - 1
    out = n << frac
    m = s << (31 - n) if n <= 31 else s >> (n - 31)
    for f in range(frac - 1, -1, -1):
        m = (m * m) >> 31
        if m >= 1 << 32:
            m >>= 1
            out |= 1 << f
    return top - ((20 + 30) << frac) + out


def np_xent(v, e, labels):
    x = v.astype(np.float64) * 2.0**e
    x = x - x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(x).sum(axis=1))
    return float(np.mean(lse - x[np.arange(len(labels)), labels]))


# ---- the perturbation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("r,p_zero,sign,shift", [(1, 0.0, 1, 0), (3, 0.33, -1, 0), (7, 0.5, -1, 2),
                                                 (127, 0.9, 1, 6), (15, 0.33, 1, 3), (2, 1.0, -1, 0)])
@pytest.mark.parametrize("n,offset", [(1, 0), (33, 5), (1000, 3), (94080, 0), (517, 4 * 0xFFFFFFFF - 6)])
def test_perturb_matches_the_transcription_on_every_isa(isa, r, p_zero, sign, shift, n, offset):
    w = np.resize(np.array([127, -127, 126, -126, 0, 5, -100], dtype=np.int8), n)  # crowded at the clip bounds
    before = w.copy()
    got = _core.int8_zo_perturb(w, KEY, 3, offset, r, p_zero, sign=sign, shift=shift)
    want = np_perturb(w, np_zeta(n, KEY, 3, offset, r, p_zero), sign, shift)
    np.testing.assert_array_equal(got, want, err_msg=f"isa={isa}")
    np.testing.assert_array_equal(w, before)  # the operand is built aside: the weights are never written


def test_zeta_of_zero_weights_is_the_perturbation_itself():
    zero = np.zeros(50000, dtype=np.int8)
    z = _core.int8_zo_perturb(zero, KEY, 1, 0, 3, 0.33).astype(np.int64)
    assert z.min() == -3 and z.max() == 3
    zeros = np.mean(z == 0)
    assert abs(zeros - (0.33 + 0.67 / 7)) < 0.01
    assert abs(z.mean()) < 0.03


def test_update_shift_schedule_and_threshold():
    assert [_core.int8_zo_update_shift(r, 1) for r in (1, 2, 3, 4, 7, 8, 127)] == [0, 1, 1, 2, 2, 3, 6]
    assert _core.int8_zo_update_shift(127, 7) == 0
    assert [_core.int8_zo_p_zero_for_epoch(e) for e in (0, 19, 20, 49, 50, 99)] == [0.33, 0.33, 0.5, 0.5, 0.9, 0.9]
    assert _core.int8_zo_zero_threshold(0.33) == 21627


# ---- the ternary gradient --------------------------------------------------------------------------------------

def _random_logits(rng, rows, classes):
    return rng.integers(-127, 128, size=(rows, classes)).astype(np.int8)


@pytest.mark.parametrize("frac", [0, 1, 6, 8])
def test_integer_log2_matches_the_transcription(frac):
    rng = np.random.default_rng(frac)
    for _ in range(30):
        rows, classes, e = int(rng.integers(1, 9)), int(rng.integers(1, 41)), int(rng.integers(-20, 20))
        v = _random_logits(rng, rows, classes)
        y = rng.integers(0, classes, size=rows).astype(np.int32)
        want = sum(np_log2_row(v[i], e, y[i], frac) for i in range(rows))
        assert _core.int8_xent_log2(v, e, y, frac) == want


def test_dequantized_loss_is_the_fp32_cross_entropy():
    rng = np.random.default_rng(1)
    v = _random_logits(rng, 16, 10)
    y = rng.integers(0, 10, size=16).astype(np.int32)
    for e in (-7, -4, 0):
        assert _core.int8_xent_dequantized(v, e, y) == pytest.approx(np_xent(v, e, y), rel=1e-5)


def test_integer_sign_agrees_with_the_fp32_sign():
    """Pairs of logits that differ the way the two passes of a step do: a small change of one batch. The paper's
    integer alphas and floor(log2) agree with the FP32 sign on 302 of these 400 (the passes' logits often differ
    by less than one power of two); 8 fractional bits in both agree on 399."""
    rng = np.random.default_rng(7)
    agree = {0: 0, 8: 0}
    trials = 400
    for _ in range(trials):
        base = rng.normal(0, 20, size=(32, 10))
        plus = np.clip(np.round(base + rng.normal(0, 2, size=base.shape)), -127, 127).astype(np.int8)
        minus = np.clip(np.round(base + rng.normal(0, 2, size=base.shape)), -127, 127).astype(np.int8)
        y = rng.integers(0, 10, size=32).astype(np.int32)
        ref = _core.int8_zo_sign(plus, -3, minus, -3, y, method="fp32")
        for frac in agree:
            agree[frac] += _core.int8_zo_sign(plus, -3, minus, -3, y, method="int", frac_bits=frac) == ref
    assert agree[0] / trials >= 0.7, agree
    assert agree[8] / trials >= 0.99, agree


def test_bad_arguments_raise():
    w = np.zeros(10, dtype=np.int8)
    with pytest.raises(ValueError, match="r must lie"):
        _core.int8_zo_perturb(w, KEY, 0, 0, 0, 0.3)
    with pytest.raises(ValueError, match="p_zero"):
        _core.int8_zo_perturb(w, KEY, 0, 0, 3, 1.5)
    with pytest.raises(ValueError, match="sign"):
        _core.int8_zo_perturb(w, KEY, 0, 0, 3, 0.3, sign=2)
    with pytest.raises(ValueError, match="shift"):
        _core.int8_zo_perturb(w, KEY, 0, 0, 3, 0.3, shift=8)
    with pytest.raises(TypeError, match="int8"):
        _core.int8_zo_perturb(w.astype(np.int16), KEY, 0, 0, 3, 0.3)
    with pytest.raises(ValueError, match="-128"):
        _core.int8_zo_perturb(np.full(3, -128, dtype=np.int8), KEY, 0, 0, 3, 0.3)
    with pytest.raises(ValueError, match="contiguous"):
        _core.int8_zo_perturb(np.zeros(20, dtype=np.int8)[::2], KEY, 0, 0, 3, 0.3)
    v, y = np.zeros((2, 10), dtype=np.int8), np.array([0, 10], dtype=np.int32)
    with pytest.raises(ValueError, match="label 10"):
        _core.int8_xent_log2(v, 0, y)
    with pytest.raises(ValueError, match="frac_bits"):
        _core.int8_xent_log2(v, 0, np.zeros(2, dtype=np.int32), 9)
    with pytest.raises(ValueError, match="rows, classes"):
        _core.int8_zo_sign(v, 0, v, 0, np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="method"):
        _core.int8_zo_sign(v, 0, v, 0, np.zeros(2, dtype=np.int32), method="float")
    with pytest.raises(ValueError, match="b_zo"):
        _core.int8_zo_update_shift(3, 0)
