"""The paper's networks: LeNet-5 (MNIST, Fashion-MNIST) and PointNet without T-nets (ModelNet40), and an MLP for
flat features. Built without a seed, a model draws a fresh one from the OS's entropy and keeps it (model.seed).
precision='int8' builds NITI's integer version: int8 weights with a power-of-two exponent, no biases, initialized as
`int8_init` says (INT8_INITS)."""

import math

import numpy as np

from elasticzo import _core
from elasticzo.nn import Conv2d, Flatten, Linear, MaxPool2d, PointLinear, PointMaxPool, ReLU, Sequential

LENET5_INPUT = (1, 28, 28)


def _seed(seed):
    return _core.fresh_seed() if seed is None else seed


PRECISIONS = ("fp32", "int8")


def _precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return {"precision": precision}


# NITI's weight initializations (NITI.md): Xavier normal (its first commit, the layers' own) or Xavier uniform (its
# final version, which the ElasticZO paper names as the reason its perturbation is uniform). Either is scaled so the
# largest |w| becomes 127; a uniform draw leaves the mantissas spread evenly over [-127, 127] (mean |w| ~64), a
# normal one concentrates them near 0 (mean |w| 23-33 for LeNet-5), where every +-1 ZO step weighs 2-3x more.
INT8_INITS = ("xavier_normal", "xavier_uniform")


def _int8_init(precision, int8_init):
    """The checked int8 initialization: None means the layers' own (Xavier normal)."""
    if int8_init is None:
        return "xavier_normal"
    if int8_init not in INT8_INITS:
        raise ValueError(f"unknown int8_init {int8_init!r}; choose one of {', '.join(INT8_INITS)}")
    if precision != "int8":
        raise ValueError(f"int8_init applies to precision='int8' models, got precision={precision!r}")
    return int8_init


def init_int8_weights(model, init: str):
    """Draws an int8 model's weights afresh from its seed (model.seed) by NITI's `init` (INT8_INITS); returns the
    model. 'xavier_normal' is the layers' own initialization; 'xavier_uniform' draws each weight tensor from its own
    Philox stream (0x55000000 + its index: "U") of the seed, fans from its shape ((out, in) or (out, in, kh, kw), as
    the layers count them)."""
    if init not in INT8_INITS:
        raise ValueError(f"unknown int8 init {init!r}; choose one of {', '.join(INT8_INITS)}")
    names = model.parameter_names()
    if any(model.state_dict()[n].dtype != np.int8 for n in names):
        raise ValueError("init_int8_weights draws the weights of a precision='int8' model")
    if init == "xavier_normal":
        model.init_parameters(model.seed)
        return model
    key = (model.seed & 0xFFFFFFFF, model.seed >> 32)
    for i, name in enumerate(names):
        shape = model.state_dict()[name].shape
        receptive = math.prod(shape[2:])
        w, e = _core.int8_init_weights(shape[1] * receptive, shape[0] * receptive, math.prod(shape), init, key,
                                       0x55000000 + i)
        model.set_parameter(name, w.reshape(shape), e)
    return model


def _seeded(model, precision, int8_init):
    """A freshly built `model` with the int8 weights `int8_init` asks for (the layers' own draw is Xavier normal)."""
    init = _int8_init(precision, int8_init)
    return model if init == "xavier_normal" else init_int8_weights(model, init)


def lenet5(num_classes: int = 10, seed=None, precision: str = "fp32", int8_init=None):
    """LeNet-5 as in the paper (SPEC §1): 107,786 parameters for 10 classes (107,550 at int8: no biases), 5
    parameter layers."""
    p = _precision(precision)
    _int8_init(precision, int8_init)
    model = Sequential(
        [
            ("conv1", Conv2d(1, 6, 5, padding=2, **p)),
            ("relu1", ReLU(**p)),
            ("pool1", MaxPool2d(2, **p)),
            ("conv2", Conv2d(6, 16, 5, padding=2, **p)),
            ("relu2", ReLU(**p)),
            ("pool2", MaxPool2d(2, **p)),
            ("flatten", Flatten(**p)),
            ("fc1", Linear(784, 120, **p)),
            ("relu3", ReLU(**p)),
            ("fc2", Linear(120, 84, **p)),
            ("relu4", ReLU(**p)),
            ("fc3", Linear(84, num_classes, **p)),
        ],
        seed=_seed(seed),
    )
    return _seeded(model, precision, int8_init)


def pointnet(num_classes: int = 40, seed=None, precision: str = "fp32", int8_init=None):
    """PointNet without T-nets or batch-norm (SPEC §1): 815,400 parameters for 40 classes, 8 parameter layers.

    The per-point layers' ReLUs work in place (one buffer per per-point layer), as the paper's memory figures assume.
    Weights are He-initialized (see _he_init): without batch-norm, the default 1/sqrt(fan_in) bound shrinks the signal
    about 9x per layer, and nothing learned in 256 steps.
    """
    p = _precision(precision)
    _int8_init(precision, int8_init)
    widths = [3, 64, 64, 64, 128, 1024]
    modules = []
    for i in range(5):
        modules += [(f"mlp{i + 1}", PointLinear(widths[i], widths[i + 1], **p)),
                    (f"mlp_relu{i + 1}", ReLU(inplace=True, **p))]
    modules += [
        ("maxpool", PointMaxPool(**p)),
        ("fc1", Linear(1024, 512, **p)),
        ("relu1", ReLU(**p)),
        ("fc2", Linear(512, 256, **p)),
        ("relu2", ReLU(**p)),
        ("fc3", Linear(256, num_classes, **p)),
    ]
    model = Sequential(modules, seed=_seed(seed))
    if precision == "fp32":  # NITI's int8 weights are scaled to +-127 whatever their float init; activations too
        _he_init(model, model.seed)
    return _seeded(model, precision, int8_init)


def _he_init(model, seed):
    """He-uniform weights (bound sqrt(6 / fan_in), so a ReLU layer keeps its input's second moment) and zero biases
    for every layer followed by a ReLU, the last layer's weights uniform in +-1/sqrt(fan_in), drawn from `seed`.

    Why: the layers' default bound 1/sqrt(fan_in) scales the second moment by 1/6 per ReLU layer, so after PointNet's
    five per-point layers the points' signal is 88x smaller than the biases' and every shape looks alike: on 4,096
    ModelNet40 shapes (32 points each) Full BP (lr 0.01) and ZO-Feat-Cls1 stayed at the class prior (3.6% test
    accuracy) after 256 steps; He-initialized, they reached 28% and 14%. BatchNorm fixes this in the original
    PointNet; the paper's variant has none."""
    rng = np.random.default_rng([seed, 0x4865])  # its own stream, apart from the layers' initialization
    names = list(model.state_dict())
    last = names[-1].rsplit(".", 1)[0]
    for name in names:
        shape = model.state_dict()[name].shape
        if name.endswith(".bias"):
            model.set_parameter(name, np.zeros(shape, np.float32))
            continue
        bound = (1.0 if name.startswith(last + ".") else math.sqrt(6.0)) / math.sqrt(shape[1])
        model.set_parameter(name, rng.uniform(-bound, bound, shape).astype(np.float32))


def mlp(in_features: int, num_classes: int, seed=None, hidden=(128, 64), precision: str = "fp32",
        int8_init=None):
    """Flat features (N, in_features) -> ReLU layers of `hidden` widths -> num_classes logits (3 parameter layers
    by default, so ZO-Feat-Cls1 trains the first by ZO and the last two by backprop)."""
    p = _precision(precision)
    _int8_init(precision, int8_init)
    widths = [in_features, *hidden]
    modules = []
    for i in range(len(hidden)):
        modules += [(f"fc{i + 1}", Linear(widths[i], widths[i + 1], **p)), (f"relu{i + 1}", ReLU(inplace=True, **p))]
    modules.append((f"fc{len(hidden) + 1}", Linear(widths[-1], num_classes, **p)))
    return _seeded(Sequential(modules, seed=_seed(seed)), precision, int8_init)


MODELS = ("lenet5", "pointnet", "mlp")


def arithmetic(precision: str) -> str:
    """The model precision a training precision runs on: 'int8-intonly' (ElasticZO-INT8 with the integer-only
    gradient) trains an 'int8' model."""
    return "int8" if precision == "int8-intonly" else precision


def build(name: str, num_classes: int, seed=None, input_shape=None, precision: str = "fp32", int8_init=None):
    """A model by name ('lenet5', 'pointnet' or 'mlp'; mlp needs the shape of one sample, `input_shape`), in
    `precision` ('fp32' or 'int8'; an int8 model's weights drawn by `int8_init`, INT8_INITS)."""
    if name == "lenet5":
        return lenet5(num_classes, seed, precision=precision, int8_init=int8_init)
    if name == "pointnet":
        return pointnet(num_classes, seed, precision=precision, int8_init=int8_init)
    if name == "mlp":
        if input_shape is None:
            raise ValueError("mlp needs input_shape, the shape of one sample")
        return mlp(math.prod(input_shape), num_classes, seed, precision=precision, int8_init=int8_init)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def model_for(sample_shape) -> str:
    """The built-in model that reads samples of this shape: lenet5 for 28x28 images ((28, 28) or (1, 28, 28)),
    pointnet for point clouds (points, 3), mlp for flat features (features,); ValueError for anything else."""
    shape = tuple(int(d) for d in sample_shape)
    if shape in (LENET5_INPUT, LENET5_INPUT[1:]):
        return "lenet5"
    if len(shape) == 2 and shape[1] == 3:
        return "pointnet"
    if len(shape) == 1:
        return "mlp"
    raise ValueError(f"no built-in model reads samples of shape {shape}: lenet5 takes 28x28 images (N, 28, 28) or "
                     f"(N, 1, 28, 28), pointnet point clouds (N, points, 3), mlp flat features (N, features); "
                     f"reshape the arrays (e.g. x.reshape(len(x), -1) for an MLP)")
