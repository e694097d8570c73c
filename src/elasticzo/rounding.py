"""NITI's rounding per tensor class for int8 models (shared/docs/NITI.md): which of the three schemes rounds the
activations, the errors, the weight gradients and the loss gradient of a run.

A setting is None (NITI's first commit, the default: pseudo-stochastic everywhere but the loss gradient, which is
stochastic), a preset name, or a mapping {class: scheme} whose classes not named keep the first commit's scheme.
The stochastic scheme draws from the counter-based generator keyed by the run's seed and step, so a run stays a
pure function of its settings, bit for bit on any thread count or ISA.
"""

from collections.abc import Mapping

from elasticzo import _core

CLASSES = ("activations", "errors", "weight_grads", "loss_grad")
SCHEMES = ("nearest", "stochastic", "pseudo_stochastic")
DEFAULT = dict(_core.default_config()["rounding"])  # written once, in C++ (RoundingPolicy)
PRESETS = {
    "first-commit": DEFAULT,
    # NITI's final version (its VGG/CIFAR-10 code): activations and errors round to nearest
    "final-version": dict(DEFAULT, activations="nearest", errors="nearest"),
}


def rounding_policy(value=None) -> dict:
    """The full {class: scheme} mapping a setting names; ValueError (TypeError for a wrong type) naming what is
    wrong."""
    if value is None:
        return dict(DEFAULT)
    if isinstance(value, str):
        if value not in PRESETS:
            raise ValueError(f"unknown rounding preset {value!r}: give one of {', '.join(PRESETS)} or a mapping "
                             f"{{class: scheme}} with classes {', '.join(CLASSES)}")
        return dict(PRESETS[value])
    if not isinstance(value, Mapping):
        raise TypeError(f"rounding must be None, a preset name or a mapping {{class: scheme}}, got "
                        f"{type(value).__name__}")
    policy = dict(DEFAULT)
    for cls, scheme in value.items():
        if cls not in CLASSES:
            raise ValueError(f"unknown tensor class {cls!r} in rounding: the classes are {', '.join(CLASSES)}")
        if scheme not in SCHEMES:
            raise ValueError(f"unknown rounding scheme {scheme!r} for {cls}: the schemes are {', '.join(SCHEMES)}")
        policy[cls] = scheme
    return policy


def parse_spec(text: str) -> dict:
    """The CLI's --rounding: a preset name or comma-separated class=scheme pairs, as a full mapping."""
    if "=" not in text:
        return rounding_policy(text)
    pairs = {}
    for item in text.split(","):
        cls, sep, scheme = item.partition("=")
        if not sep or cls.strip() in pairs:
            raise ValueError(f"--rounding {text!r}: each item is class=scheme, each class once (e.g. "
                             "activations=nearest,errors=nearest)")
        pairs[cls.strip()] = scheme.strip()
    return rounding_policy(pairs)
