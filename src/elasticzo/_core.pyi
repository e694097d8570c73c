# Type stubs for elasticzo._core, the pybind11 module (bindings/*.cpp). tests/python/test_stubs.py fails when a
# public name of the module or of one of its classes is missing here.
# Arrays: inputs must be C-contiguous, aligned, non-empty float32 (labels int32) with finite values; anything else
# raises TypeError (wrong type or dtype) or ValueError (layout, size, values), never a silent copy.
from collections.abc import Mapping, Sequence
from typing import Any, Literal, SupportsIndex, TypedDict

import numpy as np
import numpy.typing as npt

_F32Array = npt.NDArray[np.float32]
# A parameter in its own dtype: float32 today; int8 mantissas (with a '<name>.exponent' int32 scalar beside them
# in parameters() / state_dict()) once int8 layers exist.
_ParamArray = npt.NDArray[np.float32] | npt.NDArray[np.int8] | npt.NDArray[np.int32]

__version__: str

# ---- runtime (bind_runtime.cpp) ----------------------------------------------------------------------------------

class _MemoryStats(TypedDict):
    current: dict[str, int]
    peak: dict[str, int]
    total_current: int
    total_peak: int

def available_isas() -> list[str]:
    """ISA levels this CPU can run, best last ('ref' always first)."""

def active_isa() -> str:
    """The ISA level of the kernels in use."""

def set_isa(isa: str) -> None:
    """Choose the kernels: 'ref', 'avx2', 'avx512', 'neon', 'neon_dotprod' or 'auto' (the best); ValueError if
    this CPU cannot run it."""

def kernel_info() -> dict[str, str]:
    """Kernel name -> implementation in use."""

def cpu_features() -> list[str]: ...
def num_threads() -> int: ...
def set_num_threads(n: int) -> None:
    """n >= 1, else ValueError. Results are bit-identical for any n."""

def thread_pool_enabled() -> bool: ...
def memory_stats() -> _MemoryStats:
    """Current and peak bytes per category (parameters, activations, gradients, errors, optimizer, accumulators,
    workspace) of the whole process."""

def reset_peak_memory() -> None: ...

# ---- layers and models (bind_model.cpp) --------------------------------------------------------------------------

class Layer:
    """A layer: forward, backward_data and backward_weight are separate so the zeroth-order path needs no backward.
    Not constructible itself: use Conv2d, Linear, PointLinear, ReLU, MaxPool2d, Flatten or PointMaxPool.
    Sizes beyond what the kernels can index raise OverflowError naming the layer.

    Threads: every method that touches parameters holds the layer's lock, which is its model's once the layer is
    added to a Sequential, so calls from several threads take turns with each other and with training steps."""

    @property
    def kind(self) -> str: ...
    @property
    def aliases_input(self) -> bool:
        """Whether the output shares the input's storage (a view, an in-place ReLU)."""

    @property
    def num_params(self) -> int: ...
    @property
    def precision(self) -> Literal["fp32", "int8"]:
        """'int8': NITI's integer layer, which runs inside a Sequential only (its standalone calls raise)."""

    @property
    def seed(self) -> int | None:
        """Seed the parameters were initialized from (None for a layer without parameters)."""

    def output_shape(self, input_shape: Sequence[int]) -> list[int]: ...
    def forward(self, x: _F32Array) -> _F32Array:
        """Output for input x (a new array; x is never modified, even by an in-place ReLU)."""

    def backward_data(self, x: _F32Array, y: _F32Array, dy: _F32Array) -> _F32Array:
        """dL/dx from this layer's input x, output y and the output error dy."""

    def backward_weight(self, x: _F32Array, dy: _F32Array) -> dict[str, _F32Array]:
        """dL/dparam for each parameter ('weight', 'bias'), as new arrays; empty for parameter-free layers."""

    def parameters(self) -> dict[str, _ParamArray]:
        """Copies of the parameters in their dtype; an int8 one is followed by '<name>.exponent'."""

    def set_parameter(self, name: str, value: _ParamArray, exponent: int | None = None) -> None:
        """KeyError for an unknown name, ValueError for another shape; an int8 parameter needs its exponent."""

class Conv2d(Layer):
    """Stride-1 convolution with zero padding; NCHW input, weight (out, in, k, k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 bias: bool | None = None, *, seed: int | None = None,
                 precision: Literal["fp32", "int8"] = "fp32") -> None:
        """Parameters initialized from `seed`, or from a fresh random seed (see .seed) when None. bias None: one
        for fp32, none for int8 (NITI's integer layer: int8 weight with an exponent, no bias)."""

class Linear(Layer):
    """y = x W^T + b with W (out, in); PointLinear makes the per-point variant."""

    def __init__(self, in_features: int, out_features: int, bias: bool | None = None, *, seed: int | None = None,
                 precision: Literal["fp32", "int8"] = "fp32") -> None:
        """Parameters initialized from `seed`, or from a fresh random seed (see .seed) when None. bias None: one
        for fp32, none for int8 (NITI's integer layer: int8 weight with an exponent, no bias)."""

def PointLinear(in_features: int, out_features: int, bias: bool | None = None, *, seed: int | None = None,
                precision: Literal["fp32", "int8"] = "fp32") -> Linear:
    """Linear applied to every point of x[N, points, in_features] (PointNet's shared MLP); parameters as Linear."""

def fresh_seed() -> int:
    """A 63-bit seed from the operating system's entropy."""

def check_seed(seed: SupportsIndex) -> int:
    """`seed` as an int; ValueError unless an integer in [0, 2^64) (the rule of every seed the core takes)."""

class ReLU(Layer):
    def __init__(self, inplace: bool = False, *, precision: Literal["fp32", "int8"] = "fp32") -> None: ...

class MaxPool2d(Layer):
    """k x k window, stride k; rows and columns that do not fill a window are dropped."""

    def __init__(self, kernel_size: int, *, precision: Literal["fp32", "int8"] = "fp32") -> None: ...

class Flatten(Layer):
    def __init__(self, *, precision: Literal["fp32", "int8"] = "fp32") -> None: ...

class PointMaxPool(Layer):
    """Max over the points of x[N, points, features] (PointNet's global feature)."""

    def __init__(self, *, precision: Literal["fp32", "int8"] = "fp32") -> None: ...

def softmax_cross_entropy(logits: _F32Array, labels: npt.NDArray[np.int32]) -> tuple[float, _F32Array]:
    """(mean loss, dL/dlogits) of softmax cross-entropy; labels are int32 in [0, classes)."""

class Sequential:
    """A chain of named modules; elasticzo.nn.Sequential builds one from (name, layer) pairs.

    Threads: one lock guards the model's buffers and its layers' parameters; every method holds it for the whole
    call and a trainer's step holds it from start to end, so state_dict() and forward() from another thread never
    see mid-step weights. A layer with parameters can belong to one model only (ValueError otherwise)."""

    def __init__(self) -> None: ...
    def add(self, name: str, layer: Layer) -> None:
        """ValueError for a layer of another precision than the model's, or an int8 model not starting with an
        int8 Conv2d or Linear (which quantizes the float input per batch)."""

    @property
    def precision(self) -> Literal["fp32", "int8"]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[str, Layer]:
        """(name, layer) of module `index` (negative counts from the end); IndexError out of range."""

    @property
    def num_param_layers(self) -> int: ...
    @property
    def num_params(self) -> int: ...
    def param_layer_names(self) -> list[str]:
        """Module name of each parameter layer, in order."""

    def init_parameters(self, seed: int) -> None:
        """PyTorch-style uniform initialization from a seed, identical on every platform."""

    @property
    def seed(self) -> int | None:
        """Seed of the last init_parameters (None if the layers kept their own)."""

    def output_shape(self, input_shape: Sequence[int]) -> list[int]: ...
    def forward(self, x: _F32Array) -> _F32Array:
        """Model output for input x (a new float32 array; an int8 model's logits as mantissa * 2^exponent)."""

    @property
    def memory_plan(self) -> Literal["static", "lifetime"]:
        """Allocation policy of the planned buffers: 'static' (the paper's model) or 'lifetime' (sharing)."""

    @memory_plan.setter
    def memory_plan(self, policy: Literal["static", "lifetime"]) -> None: ...
    @property
    def fuse_point_pool(self) -> bool:
        """Whether a per-point Linear + ReLU + PointMaxPool with no backward through it runs as one kernel (same bits)."""

    @fuse_point_pool.setter
    def fuse_point_pool(self, on: bool) -> None: ...
    @property
    def fuse_relu_pool(self) -> bool:
        """Whether an FP32 ReLU + MaxPool2d with no backward through them runs as one pooling of the ReLU's input (same bits)."""

    @fuse_relu_pool.setter
    def fuse_relu_pool(self, on: bool) -> None: ...
    @property
    def rounding(self) -> dict[str, str]:
        """INT8: {tensor class: rounding scheme}; the layers use 'activations' and 'errors', a trainer sets all."""

    @rounding.setter
    def rounding(self, schemes: dict[str, str]) -> None: ...
    def plan(self, input_shape: Sequence[int], zo_layers: int, policy: Literal["static", "lifetime"]) -> dict[str, Any]:
        """The memory plan of a training step (every buffer with bytes, category and lifetime; the forward fusions by
        start module and kind); allocates nothing."""

    def current_plan(self) -> dict[str, Any] | None:
        """The plan the model's buffers are allocated from (None before the first pass)."""

    def memory_stats(self) -> dict[str, dict[str, int]]:
        """Current and peak bytes per category (and 'total') of this model's memory."""

    def reset_peak_memory(self) -> None: ...
    def release_buffers(self) -> None:
        """Frees every planned buffer (activations, errors, gradients, workspace); the next pass plans again."""

    def memory_records(self) -> list[dict[str, Any]]:
        """The tracker's record of every live allocation of this model (name, category, bytes, lifetime)."""

    def parameter_names(self) -> list[str]: ...
    def state_dict(self) -> dict[str, _ParamArray]:
        """Copies of all parameters by name ('conv1.weight', ...) in their dtype; an int8 one is followed by
        '<name>.exponent' (a 0-d int32 array)."""

    def parameter(self, name: str) -> _ParamArray: ...
    def set_parameter(self, name: str, value: _ParamArray, exponent: int | None = None) -> None:
        """Copies `value` (the parameter's dtype and shape) in; an int8 parameter also takes its exponent."""
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
        """Parameters by PyTorch's names from numpy arrays or torch tensors; defined in elasticzo.nn."""

# ---- training (bind_train.cpp) -----------------------------------------------------------------------------------

class _StepStats(TypedDict):
    loss: float
    loss_plus: float
    loss_minus: float
    projected_grad: float

class _OptimizerState(TypedDict):
    steps: int
    m: list[_F32Array]
    v: list[_F32Array]

def default_config() -> dict[str, Any]:
    """The trainer's default hyperparameters (ElasticZOConfig), the one place they are written."""

class ElasticZO:
    """Trains parameter layers [0, zo_layers) of `model` by zeroth-order SPSA and the rest by backprop.

    Threads: step() and every other method hold the model's lock, so the trainer's state (step count, optimizer
    moments, learning rates) is read and changed between steps only."""

    def __init__(self, model: Sequential, zo_layers: int, *, eps: float, lr_zo: float, lr_bp: float,
                 grad_clip: float, clean_bp_pass: bool, optimizer: Literal["sgd", "adam"], seed: int,
                 memory_plan: Literal["static", "lifetime"] = "static", zo_range: int = 16, zo_p_zero: float = 0.33,
                 zo_update_bits: int = 1, integer_sign: bool = False, log2_frac_bits: int = 8,
                 rounding: dict[str, str] = ...) -> None: ...
    def step(self, x: _F32Array, labels: npt.NDArray[np.int32]) -> _StepStats:
        """One ElasticZO step on a minibatch; returns its losses."""

    def apply_zo_update(self, step: int, coefficient: float) -> None:
        """theta[ZO] += coefficient * z(step): replays a ZO update (coefficient = -lr_zo * g) on these weights."""

    @property
    def zo_layers(self) -> int: ...
    @property
    def precision(self) -> Literal["fp32", "int8"]:
        """The model's: 'int8' trains by ElasticZO-INT8 (NITI backprop for the layers after zo_layers)."""

    @property
    def zo_p_zero(self) -> float:
        """INT8 with a ZO part: the fraction of the perturbation zeroed (in [0, 1])."""

    @zo_p_zero.setter
    def zo_p_zero(self, value: float) -> None: ...
    @property
    def zo_range(self) -> int:
        """INT8 with a ZO part: the perturbation range r, |zeta| <= r."""

    @zo_range.setter
    def zo_range(self, value: int) -> None: ...
    @property
    def sign_agreement(self) -> tuple[int, int]:
        """INT8 with the integer-only gradient: (steps whose integer sign agreed with the floating-point one, steps)."""

    @sign_agreement.setter
    def sign_agreement(self, value: tuple[int, int]) -> None: ...
    @property
    def sign_ties(self) -> tuple[int, int]:
        """INT8 with the integer-only gradient: (ties: steps whose integer sign was 0 while the floating-point one was
        not, undecided: steps whose integer sign was 0), of the steps sign_agreement counts."""

    @sign_ties.setter
    def sign_ties(self, value: tuple[int, int]) -> None: ...
    @property
    def rounding(self) -> dict[str, str]:
        """INT8: the rounding scheme of each tensor class (fixed at construction)."""

    @property
    def gradient_bits(self) -> int:
        """INT8: NITI's gradient bit-width mu in [0, 7], the learning rate of its weight update."""

    @gradient_bits.setter
    def gradient_bits(self, value: int) -> None: ...
    @property
    def lr_zo(self) -> float: ...
    @property
    def lr_bp(self) -> float: ...
    def set_learning_rates(self, lr_zo: float, lr_bp: float) -> None: ...
    @property
    def steps_done(self) -> int:
        """Steps taken; the step number keys each perturbation, so resuming sets it back."""

    @steps_done.setter
    def steps_done(self, value: int) -> None: ...
    def times(self) -> dict[str, float]:
        """Seconds spent per phase since the last clear_times()."""

    def clear_times(self) -> None: ...
    def optimizer_state(self) -> _OptimizerState:
        """Adam's moments (empty for SGD) and its step count, for checkpoints."""

    def load_optimizer_state(self, steps: int, m: Sequence[_F32Array], v: Sequence[_F32Array]) -> None: ...

# ---- counter-based generator (bind_rng.cpp) ----------------------------------------------------------------------

def philox4x32(counters: npt.NDArray[np.uint32], key: tuple[int, int]) -> npt.NDArray[np.uint32]:
    """Raw Philox4x32-10: one output block of 4 uint32 words per row of the (n, 4) uint32 counters."""

def philox4x64(counters: npt.NDArray[np.uint64], key: tuple[int, int]) -> npt.NDArray[np.uint64]:
    """Raw Philox4x64-10 (numpy.random.Philox's block function): one block per row of the (n, 4) uint64 counters."""

def step_key(run_seed: int, step: int) -> tuple[int, int]:
    """The Philox4x32 key (k0, k1) of a training step."""

def gaussian(n: int, key: tuple[int, int], stream: int, offset: int = 0) -> _F32Array:
    """Standard normals z(key, stream, offset + i), i < n, from the active kernels (bit-identical on every ISA)."""


# ---- NITI integer rules, scalar references (bind_int8.cpp) ------------------------------------------------------

_I8Array = npt.NDArray[np.int8]
_I32Array = npt.NDArray[np.int32]

def int8_range(x: _I32Array) -> int:
    """NITI's range of an int32 tensor: the bit length of max|x| (0 for all zeros)."""

def int8_round_shift(x: _I32Array, s: int, mode: str, key: tuple[int, int] = (0, 0), stream: int = 0,
                     offset: int = 0) -> _I8Array:
    """round(x / 2^s) on sign and magnitude ('nearest', 'stochastic', 'pseudo_stochastic'), clipped to +-127."""

def int8_requantize(acc: _I32Array, mode: str, key: tuple[int, int] = (0, 0), stream: int = 0,
                    offset: int = 0) -> tuple[_I8Array, int]:
    """int32 accumulators to (int8 mantissas, shift s >= 0 to add to the exponent)."""

def int8_quantize_input(x: _F32Array) -> tuple[_I8Array, int]:
    """A float32 batch to (int8 mantissas, exponent), NITI's input quantization."""

def int8_init_weights(fan_in: int, fan_out: int, n: int, init: str, key: tuple[int, int],
                      stream: int) -> tuple[_I8Array, int]:
    """NITI's weight initialization: (int8 mantissas, exponent), init 'xavier_normal' or 'xavier_uniform'."""

def int8_weight_update(w: _I8Array, grad: _I32Array, mu: int, mode: str = "pseudo_stochastic",
                       key: tuple[int, int] = (0, 0), stream: int = 0, offset: int = 0) -> int:
    """NITI's in-place update of int8 weights with gradient bit-width mu; returns s = range(grad) - mu."""

def int8_mu_for_epoch(epoch: int) -> int:
    """The paper's mu schedule: 5, then 4 from epoch 20, then 3 from epoch 50 (epochs from 0)."""

def int8_xent_grad(logits: _I8Array, exponent: int, labels: _I32Array, mode: str = "stochastic",
                   key: tuple[int, int] = (0, 0), stream: int = 0, offset: int = 0) -> _I8Array:
    """NITI's integer cross-entropy gradient (exponent 0) of int8 logits with the given exponent."""


# ---- ElasticZO-INT8 rules (bind_zo_int8.cpp) --------------------------------------------------------------------

def int8_zo_perturb(w: _I8Array, key: tuple[int, int], stream: int, offset: int, r: int, p_zero: float,
                    sign: int = 1, shift: int = 0) -> _I8Array:
    """clip(w + sign * R_shift(zeta), +-127) through the active kernels (zeta: sparse, |zeta| <= r)."""

def int8_zo_update_shift(r: int, b_zo: int) -> int:
    """The ZO update's shift: range_bits(r) - b_zo, at least 0."""

def int8_zo_p_zero_for_epoch(epoch: int) -> float:
    """The paper's sparsity schedule: 0.33, then 0.5 from epoch 20, then 0.9 from epoch 50 (epochs from 0)."""

def int8_zo_zero_threshold(p_zero: float) -> int:
    """round(p_zero * 2^16): a word's high half below it zeroes the element."""

def int8_xent_dequantized(logits: _I8Array, exponent: int, labels: _I32Array) -> float:
    """The mean FP32 cross-entropy of the logits logits * 2^exponent."""

def int8_xent_log2(logits: _I8Array, exponent: int, labels: _I32Array, frac_bits: int = 0) -> int:
    """Integer-only: sum over rows of log2 S (S = sum_j 2^alpha_j) with frac_bits fractional bits."""

def int8_zo_sign(plus: _I8Array, e_plus: int, minus: _I8Array, e_minus: int, labels: _I32Array,
                 method: str = "fp32", frac_bits: int = 0) -> int:
    """The ternary ZO gradient sign(l+ - l-) from two passes' int8 logits: 'fp32' or 'int' (integer only)."""
