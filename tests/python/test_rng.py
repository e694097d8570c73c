"""The counter-based generator through elasticzo._core: Philox4x32-10 against randomgen and Random123's known
answers, Philox4x64-10 and step_key against numpy.random.Philox, and the normals against a float64 numpy
evaluation of the mapping documented in src/cpp/rng/gaussian.h (from randomgen's words, so no C++ code is the
oracle of itself), bit-identical on every ISA and thread count.

numpy and randomgen increment the counter before each block, so a generator made with counter c - 1 starts at c.
"""

import numpy as np
import pytest
import randomgen

from elasticzo import _core

M32, M64, M128 = 2**32 - 1, 2**64 - 1, 2**128 - 1


def _words(value: int, count: int, bits: int) -> list:
    return [(value >> (bits * i)) & ((1 << bits) - 1) for i in range(count)]


def _counter_rows(start: int, blocks: int, bits: int) -> np.ndarray:
    """Rows of the 4-word counters start, start + 1, ... (4 * bits-bit integers, word 0 lowest)."""
    dtype = np.uint32 if bits == 32 else np.uint64
    return np.array([_words((start + i) % 2 ** (4 * bits), 4, bits) for i in range(blocks)], dtype=dtype)


def _randomgen_4x32(key, counter: int, blocks: int) -> np.ndarray:
    g = randomgen.Philox(number=4, width=32, key=key[0] | key[1] << 32, counter=(counter - 1) % 2**128)
    return g.random_raw(4 * blocks).astype(np.uint32).reshape(blocks, 4)


def test_philox4x32_random123_known_answers():
    cases = [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([M32] * 4, (M32, M32), [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for ctr, key, want in cases:
        got = _core.philox4x32(np.array([ctr], dtype=np.uint32), key)
        assert got.dtype == np.uint32
        assert got[0].tolist() == want, (ctr, key)


@pytest.mark.parametrize("key, start", [
    ((0, 0), 0),
    ((0xDEADBEEF, 0x12345678), 0xFFFFFFFE),            # carry from word 0 into word 1
    ((1, M32), (7 << 64) | (M64 - 3)),                 # carry into the stream word
    ((0x9E3779B9, 0xBB67AE85), M128 - 5),              # wrap of the whole counter
])
def test_philox4x32_matches_randomgen(key, start):
    want = _randomgen_4x32(key, start, 64)
    got = _core.philox4x32(_counter_rows(start, 64, 32), key)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("key, start", [((0, 0), 0), ((2**63 + 5, 17), 2**64 - 2), ((M64, M64), 2**256 - 3)])
def test_philox4x64_matches_numpy(key, start):
    g = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=(start - 1) % 2**256)
    want = g.random_raw(4 * 40).reshape(40, 4)
    got = _core.philox4x64(_counter_rows(start, 40, 64), key)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed, step", [(0, 0), (12345, 1), (M64, 987654321), (2024, M64)])
def test_step_key_is_the_first_philox4x64_word(seed, step):
    w = int(np.random.Philox(key=np.array([seed, 0], dtype=np.uint64), counter=(step - 1) % 2**256).random_raw())
    assert _core.step_key(seed, step) == (w & M32, w >> 32)


def _normals_float64(key, stream: int, offset: int, n: int) -> np.ndarray:
    """z(key, stream, offset + i) of src/cpp/rng/gaussian.h in float64, from randomgen's Philox4x32 words."""
    first, last = offset // 4, (offset + n - 1) // 4
    w = _randomgen_4x32(key, first | stream << 64, last - first + 1).astype(np.float64)
    k = np.floor(w / 256.0)  # w >> 8
    r0, r1 = np.sqrt(-2 * np.log((k[:, 0] + 1) / 2**24)), np.sqrt(-2 * np.log((k[:, 2] + 1) / 2**24))
    a0, a1 = 2 * np.pi * k[:, 1] / 2**24, 2 * np.pi * k[:, 3] / 2**24
    z = np.stack([r0 * np.cos(a0), r0 * np.sin(a0), r1 * np.cos(a1), r1 * np.sin(a1)], axis=1).ravel()
    return z[offset - 4 * first:offset - 4 * first + n]


@pytest.mark.parametrize("n, offset", [(1, 0), (7, 3), (33, 5), (1000, 2**40 + 1), (20011, 13)])
def test_gaussian_matches_the_documented_mapping(isa, n, offset):
    key, stream = _core.step_key(77, 3), 2
    z = _core.gaussian(n, key, stream, offset)
    assert z.dtype == np.float32 and z.shape == (n,)
    want = _normals_float64(key, stream, offset, n)
    # A few float32 ulps (rng/gaussian.h); the absolute term covers float64's cos(pi/2) = 6e-17 against an exact 0.
    tol = 4 * np.spacing(np.abs(want).astype(np.float32)).astype(np.float64) + 1e-12
    bad = np.flatnonzero(np.abs(z - want) > tol)
    assert bad.size == 0, f"isa={isa} n={n} offset={offset}: first bad index {bad[:1]}, got {z[bad[:1]]} want {want[bad[:1]]}"


def test_gaussian_bits_equal_on_every_isa_and_thread_count(optimized_isa, restore_threads):
    key = _core.step_key(5, 9)
    runs = {}
    for threads in (1, 3):
        _core.set_num_threads(threads)
        runs[threads] = _core.gaussian(50001, key, 1, 6).view(np.uint32)
    _core.set_isa("ref")
    ref = _core.gaussian(50001, key, 1, 6).view(np.uint32)
    for threads, bits in runs.items():
        bad = np.flatnonzero(bits != ref)
        assert bad.size == 0, f"{optimized_isa} with {threads} threads differs from ref first at {bad[:1]}"


def test_gaussian_statistics():
    n = 400_000
    z = _core.gaussian(n, _core.step_key(31, 4), 0).astype(np.float64)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(np.abs(z) > 2) - 0.04550026) < 5 * np.sqrt(0.0455 / n)
    assert np.abs(z).max() <= np.sqrt(48 * np.log(2)) + 1e-6


@pytest.mark.parametrize("call, message", [
    (lambda: _core.gaussian(-1, (1, 2), 0), "n must lie"),
    (lambda: _core.gaussian(4, (1, 2**32), 0), "key must lie"),
    (lambda: _core.gaussian(4, (1, 2, 3), 0), "pair"),
    (lambda: _core.gaussian(4, (1, 2), -1), "stream must lie"),
    (lambda: _core.step_key(1.5, 0), "run_seed must be an integer"),
    (lambda: _core.step_key(1, -2), "step must lie"),
    (lambda: _core.philox4x32(np.zeros((2, 3), np.uint32), (0, 0)), "counters must be"),
    (lambda: _core.philox4x32(np.zeros((2, 4), np.int64), (0, 0)), "counters must be"),
    (lambda: _core.philox4x64(np.zeros((8, 4), np.uint64)[::2], (0, 0)), "C-contiguous"),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
