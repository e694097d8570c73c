"""NITI's integer rules in C++ (int8/rules.h, bound as elasticzo._core.int8_*) against a NumPy transcription of
shared/docs/NITI.md written here, on random tensors: rounding schemes, range, requantization, input
quantization, weight initialization and update, and the integer cross-entropy gradient. The transcription uses the
integer conventions the C++ documents where NITI's Python used floats (bit-length range, floor shift for the
loss's base-2 exponent, integer division)."""

import numpy as np
import pytest

from elasticzo import _core

SCHEMES = ["nearest", "stochastic", "pseudo_stochastic"]
KEY, STREAM = (0x1234, 0xBEEF), 5


# ---- the transcription ---------------------------------------------------------------------------------------

def philox_words(n, key, stream, offset):
    """Word offset + i (i < n) of Philox4x32-10 stream (key, stream): lane w % 4 of block w // 4."""
    words = np.arange(offset, offset + n, dtype=np.uint64)
    blocks = np.unique(words // 4)
    ctr = np.zeros((len(blocks), 4), dtype=np.uint32)
    ctr[:, 0] = (blocks & 0xFFFFFFFF).astype(np.uint32)
    ctr[:, 1] = (blocks >> np.uint64(32)).astype(np.uint32)
    ctr[:, 2] = stream
    out = _core.philox4x32(ctr, key)
    row = np.searchsorted(blocks, words // 4)
    return out[row, (words % 4).astype(np.int64)].astype(np.int64)


def np_range(x):
    """ceil(log2 max|x|) as a bit length (max = 2^k gives k + 1), 0 for all zeros."""
    return int(np.abs(np.asarray(x, dtype=np.int64)).max(initial=0)).bit_length()


def np_round_shift(x, s, scheme, words=None):
    """NITI.md: q = trunc(x / 2^s), r = x - q 2^s on sign and magnitude, then the scheme's +-1, clip to +-127."""
    x = np.asarray(x, dtype=np.int64)
    sign, mag = np.sign(x), np.abs(x)
    if s == 0:
        return np.clip(x, -127, 127).astype(np.int8)
    q, r = mag // 2**s, mag % 2**s
    if scheme == "nearest":
        up = r // 2 ** (s - 1) >= 1
    elif scheme == "stochastic":
        up = r > (words & (2**s - 1))
    else:
        lo_bits = s // 2
        hi, lo = r // 2**lo_bits, r % 2**lo_bits
        if s % 2 == 1:
            lo = lo * 2
        up = hi > lo
    return np.clip(sign * (q + up), -127, 127).astype(np.int8)


def np_requantize(acc, scheme, words=None):
    s = max(0, np_range(acc) - 7)
    return np_round_shift(acc, s, scheme, words), s


def round_half_away(y):
    y = np.asarray(y, dtype=np.float64)
    return np.where(y >= 0, np.floor(y + 0.5), np.ceil(y - 0.5))


def np_quantize_input(x):
    m = np.float32(np.abs(x).max(initial=0))
    b = int(np.frexp(m)[1]) if m > 0 else 0
    v = np.clip(round_half_away(np.ldexp(x.astype(np.float64), 7 - b)), -127, 127).astype(np.int8)
    return v, b - 7


def np_init(fan_in, fan_out, n, init, key, stream):
    fans = np.float32(fan_in) + np.float32(fan_out)
    if init == "xavier_normal":
        w = np.sqrt(np.float32(2) / fans) * _core.gaussian(n, key, stream)
    else:
        u = ((philox_words(n, key, stream, 0) >> 8).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-24)
        w = np.sqrt(np.float32(6) / fans) * (np.float32(2) * u - np.float32(1))
    m = np.abs(w).max()
    v = round_half_away((w / m) * np.float32(127)).astype(np.int8)
    return v, int(np.frexp(m)[1]) - 7


def np_update(w, grad, mu, scheme, words=None):
    b = np_range(grad)
    if b == 0:
        return w.copy(), 0
    s = b - mu
    g = grad.astype(np.int64) if s < 1 else np_round_shift(grad, s, scheme, words).astype(np.int64)
    return np.clip(w.astype(np.int64) - g, -127, 127).astype(np.int8), s


def np_xent_grad(v, e, labels, scheme, words=None):
    v = v.astype(np.int64)
    if e > -7:
        p = v * 47274
        s = (p * 2 ** min(e, 32)) // 2**15 if e >= 0 else p // 2 ** (15 - e)
        d = s - (s.max(axis=1, keepdims=True) - 10)
        t = np.where(d > 0, 2 ** np.maximum(d, 0) - 1, 0)
    else:
        ee = max(e, -24)
        t = 2 ** (1 - 2 * ee) + v * 2 ** (1 - ee) + v * v
    p = t * 2048 // t.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= p.sum(axis=1)
    return np_round_shift(p, 4, scheme, words)


# ---- the comparisons -------------------------------------------------------------------------------------------

def random_i32(rng, n, bits):
    return rng.integers(-(2**bits) + 1, 2**bits, size=n, dtype=np.int64).astype(np.int32)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("s", [1, 2, 3, 4, 7, 8, 13, 24])
def test_round_shift_matches_transcription(scheme, s):
    rng = np.random.default_rng(s)
    x = random_i32(rng, 3001, min(s + 9, 31))
    x[:4] = [2**s, -(2**s), 2 ** (s - 1), -(2 ** (s - 1))]  # exact multiple and exact half, both signs
    got = _core.int8_round_shift(x, s, scheme, KEY, STREAM, 17)
    want = np_round_shift(x, s, scheme, philox_words(x.size, KEY, STREAM, 17))
    np.testing.assert_array_equal(got, want)


def test_range_at_powers_of_two():
    for k in range(31):
        for x in (2**k, -(2**k)):
            assert _core.int8_range(np.array([x, 0], dtype=np.int32)) == np_range([x]) == k + 1
    assert _core.int8_range(np.zeros(3, dtype=np.int32)) == 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_requantize_matches_transcription(scheme):
    rng = np.random.default_rng(1)
    for bits in (3, 7, 8, 12, 20, 30):
        acc = random_i32(rng, 777, bits)
        got, s = _core.int8_requantize(acc, scheme, KEY, STREAM, 3)
        want, ws = np_requantize(acc, scheme, philox_words(acc.size, KEY, STREAM, 3))
        assert s == ws
        np.testing.assert_array_equal(got, want)


def test_quantize_input_matches_transcription():
    rng = np.random.default_rng(2)
    for scale in (1e-3, 0.5, 1.0, 2.82, 300.0):
        x = (rng.standard_normal((16, 28)) * scale).astype(np.float32)
        got, e = _core.int8_quantize_input(x)
        want, we = np_quantize_input(x)
        assert e == we
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="not finite"):
        _core.int8_quantize_input(np.array([1.0, np.inf], dtype=np.float32))
    with pytest.raises(TypeError, match="float32"):
        _core.int8_quantize_input(np.zeros(3))


@pytest.mark.parametrize("init", ["xavier_normal", "xavier_uniform"])
def test_init_matches_transcription(init):
    got, e = _core.int8_init_weights(150, 400, 2400, init, KEY, 9)
    want, we = np_init(150, 400, 2400, init, KEY, 9)
    assert e == we
    np.testing.assert_array_equal(got, want)
    assert np.abs(got).max() == 127


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("mu", [0, 3, 5])
def test_update_matches_transcription(scheme, mu):
    rng = np.random.default_rng(mu)
    for bits in (2, 5, 9, 16, 28):
        w = rng.integers(-127, 128, size=500).astype(np.int8)
        grad = random_i32(rng, 500, bits)
        want, ws = np_update(w, grad, mu, scheme, philox_words(500, KEY, STREAM, 0))
        s = _core.int8_weight_update(w, grad, mu, scheme, KEY, STREAM, 0)
        assert s == ws
        np.testing.assert_array_equal(w, want)
    zero = np.zeros(4, dtype=np.int32)
    w = np.arange(4, dtype=np.int8)
    assert _core.int8_weight_update(w, zero, mu) == 0
    np.testing.assert_array_equal(w, np.arange(4))


def test_mu_schedule():
    assert [_core.int8_mu_for_epoch(e) for e in (0, 19, 20, 49, 50, 99)] == [5, 5, 4, 4, 3, 3]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("e", [-30, -24, -10, -7, -6, -3, -1, 0, 1, 3, 40])
def test_xent_grad_matches_transcription(scheme, e):
    rng = np.random.default_rng(e + 100)
    for classes in (2, 10, 40):
        v = rng.integers(-127, 128, size=(33, classes)).astype(np.int8)
        labels = rng.integers(0, classes, size=33).astype(np.int32)
        got = _core.int8_xent_grad(v, e, labels, scheme, KEY, STREAM, 11)
        want = np_xent_grad(v, e, labels, scheme, philox_words(v.size, KEY, STREAM, 11).reshape(v.shape))
        np.testing.assert_array_equal(got, want)


def test_xent_grad_follows_softmax():
    """About (softmax - onehot) 2^7 in both branches."""
    rng = np.random.default_rng(7)
    for e in (-3, -9):
        v = rng.integers(-127, 128, size=(64, 10)).astype(np.int8)
        labels = rng.integers(0, 10, size=64).astype(np.int32)
        g = _core.int8_xent_grad(v, e, labels, "nearest").astype(np.float64)
        logits = v * 2.0**e
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(64), labels] -= 1
        # Base-2 exponent in whole bits: ratios of the softmax are off by up to a factor 2 in the first branch.
        assert np.corrcoef(g.ravel(), p.ravel())[0, 1] > 0.9
        np.testing.assert_array_less(np.abs(g.sum(axis=1)), 10)  # rows sum to 0 before rounding


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="int32"):
        _core.int8_round_shift(np.zeros(3, dtype=np.int64), 1, "nearest")
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.int8_range(np.zeros((4, 4), dtype=np.int32)[:, ::2])
    with pytest.raises(ValueError, match="unknown rounding"):
        _core.int8_round_shift(np.zeros(3, dtype=np.int32), 1, "floor")
    with pytest.raises(ValueError, match="mu"):
        _core.int8_weight_update(np.zeros(3, dtype=np.int8), np.ones(3, dtype=np.int32), 9)
    with pytest.raises(ValueError, match="label"):
        _core.int8_xent_grad(np.zeros((2, 3), dtype=np.int8), 0, np.array([0, 3], dtype=np.int32))
