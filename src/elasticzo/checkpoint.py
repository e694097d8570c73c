"""Checkpoints in safetensors: model parameters, optimizer state and the trainer's position, written atomically.

Resuming from a checkpoint continues bit-identically: parameters and Adam moments are stored exactly, every
perturbation is regenerated from (seed, step) and every batch order from (seed, epoch). A SHA-256 over every stored
tensor (name, dtype, shape, bytes) and every metadata entry is verified on load, so a flipped bit anywhere is
refused instead of training on; the trainer state is checked key by key so that a tampered or truncated one is a
CheckpointError naming what is wrong. The model's layers are stored too, so a checkpoint saved from Python with a
custom model can be evaluated or resumed without the code that built it.

Every tensor keeps its dtype. An int8 tensor (NITI mantissas) is worth nothing without its power-of-two exponent:
the exponents are stored explicitly in the metadata entry "exponents" ({tensor name: int}, covered by the checksum),
and a checkpoint whose int8 tensors and exponents do not pair up exactly is refused. Read back, each exponent is the
0-d int32 array "<tensor name>.exponent" beside its tensor, as in Sequential.state_dict().
"""

import ast
import hashlib
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from elasticzo.data.augment import AUGMENTATIONS
from elasticzo.rounding import CLASSES, rounding_policy

FORMAT = "elasticzo-checkpoint/2"
OLD_FORMATS = ("elasticzo-checkpoint/1",)  # no checksum, no model layers: read with a warning
TMP_MARK = ".tmp-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, was modified or damaged, or does not fit the model."""


# ---- atomic files ------------------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(path: Path) -> None:
    """Deletes `.NAME.tmp-PID` files beside `path` left by a process that died while writing (SIGKILL, power)."""
    path = Path(path)
    prefix = f".{path.name}{TMP_MARK}"
    try:
        leftovers = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in leftovers:
        pid = p.name[len(prefix):]
        if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
            try:
                p.unlink()
            except OSError:
                pass


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over `path`: a reader never sees a half-written file, even after a crash.

    The temporary file carries the writer's pid, so the next write to `path` reclaims one left by a killed writer.
    """
    path = Path(path)
    if path.is_dir():  # checked first: the temporary file would go into its parent, and the rename fail after it
        raise IsADirectoryError(f"{path} is a directory; give a file path such as {path / 'checkpoint.safetensors'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---- the model's layers ------------------------------------------------------------------------------------------

def model_layers(model) -> list:
    """[(module name, layer repr)] of a Sequential, e.g. ("conv1", "Conv2d(1, 6, kernel_size=5, padding=2)")."""
    return [[name, repr(layer)] for name, layer in (model[i] for i in range(len(model)))]


def build_model(layers):
    """The Sequential that `model_layers` described (parameters uninitialized). Only layer constructors with
    literal arguments are accepted: a layer string is parsed, never executed."""
    from elasticzo import nn

    model = nn.Sequential()
    for item in layers:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            raise CheckpointError(f"layer entry {item!r} is not [name, layer]")
        name, text = item
        try:
            call = ast.parse(text, mode="eval").body
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id in nn.LAYER_TYPES):
                raise ValueError("not a layer constructor")
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            model.add(name, getattr(nn, call.func.id)(*args, **kwargs))
        except (SyntaxError, ValueError, TypeError) as exc:
            raise CheckpointError(f"layer {name!r} = {text!r} cannot be rebuilt: {exc}") from exc
    return model


# ---- checksum and validation -------------------------------------------------------------------------------------

def checksum(tensors: dict, metadata: dict) -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes, in name order) and every metadata entry but itself."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    for key in sorted(k for k in metadata if k != "sha256"):
        h.update(json.dumps([key, metadata[key]]).encode())
    return h.hexdigest()


def _int(value, what, minimum=0, maximum=2**63 - 1):
    """An integer in [minimum, maximum]; the default maximum is what the C++ side's 64-bit counters hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CheckpointError(f"{what} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise CheckpointError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


# config key -> checker; ranges beyond these are checked by ElasticZO itself
_CONFIG = {
    "zo_layers": lambda v, w: _int(v, w, 0, 2**31 - 1), "lr_zo": _number, "lr_bp": _number, "eps": _number,
    "grad_clip": _number, "lr_decay": _number, "lr_decay_every": lambda v, w: _int(v, w, 1, 2**31 - 1),
    "seed": lambda v, w: _int(v, w, 0, 2**64 - 1),
}


def check_state(state, path="checkpoint") -> dict:
    """The trainer state of a checkpoint, type- and range-checked; CheckpointError naming the first bad entry."""
    def need(mapping, key, kind, where):
        if not isinstance(mapping, dict) or key not in mapping:
            raise CheckpointError(f"{path}: {where} has no {key!r}")
        if not isinstance(mapping[key], kind) or isinstance(mapping[key], bool) and kind is not bool:
            raise CheckpointError(f"{path}: {where}{key} has the wrong type {type(mapping[key]).__name__}")
        return mapping[key]

    try:
        for key in ("info", "config"):
            need(state, key, dict, "the trainer state ")
        for key in ("epoch", "batch_in_epoch", "steps_done", "optimizer_steps"):
            _int(need(state, key, int, "the trainer state "), key)
        need(state, "layers", list, "the trainer state ")
        loss = need(state, "epoch_loss_sum", str, "the trainer state ")
        try:
            loss_value = float(loss)
        except ValueError:
            loss_value = math.nan
        if not math.isfinite(loss_value):
            raise CheckpointError(f"epoch_loss_sum must be a finite number, got {loss!r}")
        if "sign_agreement" in state:  # absent from checkpoints written before ElasticZO-INT8
            counts = need(state, "sign_agreement", list, "the trainer state ")
            if len(counts) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts) \
                    or not 0 <= counts[0] <= counts[1] < 2**63:
                raise CheckpointError(f"sign_agreement must be [agreements, steps] with 0 <= agreements <= steps, "
                                      f"got {counts!r}")
        if "sign_ties" in state:  # absent from checkpoints written before ties were counted
            ties = need(state, "sign_ties", list, "the trainer state ")
            steps = state.get("sign_agreement", [0, 0])[1]
            if len(ties) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in ties) \
                    or not 0 <= ties[0] <= ties[1] <= steps:
                raise CheckpointError(f"sign_ties must be [ties, undecided] with 0 <= ties <= undecided <= the "
                                      f"steps of sign_agreement ({steps}), got {ties!r}")
        rounding = state["config"].get("rounding") if isinstance(state.get("config"), dict) else None
        if rounding is not None:  # absent from checkpoints written before the rounding was a setting
            try:
                if rounding_policy(rounding) != rounding:
                    raise ValueError(f"it names {len(rounding)} of the {len(CLASSES)} tensor classes")
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"config.rounding {rounding!r} is not a rounding policy: {exc}") from None
        history = need(state, "history", list, "the trainer state ")
        if not all(isinstance(m, dict) for m in history):
            raise CheckpointError("history must be a list of per-epoch metrics")
        config = state["config"]
        for key, check in _CONFIG.items():
            check(need(config, key, (int, float), "config."), f"config.{key}")
        need(config, "clean_bp_pass", bool, "config.")
        if need(config, "optimizer", str, "config.") not in ("sgd", "adam"):
            raise CheckpointError(f"config.optimizer must be 'sgd' or 'adam', got {config['optimizer']!r}")
        if config.get("augment", "none") not in AUGMENTATIONS:  # checkpoints before augmentation have none
            raise CheckpointError(f"config.augment must be one of {', '.join(AUGMENTATIONS)}, got "
                                  f"{config['augment']!r}")
    except CheckpointError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise CheckpointError(f"{path}: {exc}") from None
    return state


EXPONENT = ".exponent"


def split_exponents(arrays: dict) -> tuple:
    """(tensors, {tensor name: exponent}) from a state-dict-like mapping whose int8 tensors have a '.exponent' entry."""
    tensors = {k: v for k, v in arrays.items() if not k.endswith(EXPONENT)}
    exponents = {k[:-len(EXPONENT)]: int(v) for k, v in arrays.items() if k.endswith(EXPONENT)}
    _check_exponents(tensors, exponents, "state")
    return tensors, exponents


def _check_exponents(tensors: dict, exponents, path) -> None:
    if not isinstance(exponents, dict):
        raise CheckpointError(f"{path}: exponents must be a mapping of tensor name to int, got {exponents!r}")
    int8 = {k for k, a in tensors.items() if a.dtype == np.int8}
    if set(exponents) != int8:
        raise CheckpointError(f"{path}: int8 tensors {sorted(int8)} and exponents {sorted(exponents)} do not pair up "
                              "(every int8 tensor needs exactly one exponent)")
    for name, e in exponents.items():
        if isinstance(e, bool) or not isinstance(e, int) or not -2**31 <= e < 2**31:
            raise CheckpointError(f"{path}: the exponent of {name} must be an int32, got {e!r}")
        if (tensors[name] == -128).any():
            raise CheckpointError(f"{path}: int8 tensor {name} holds -128 (mantissas lie in [-127, 127])")


def _check_tensors(tensors: dict, path) -> None:
    for name, a in tensors.items():
        if not (name.startswith("model.") or name.startswith("optimizer.m.") or name.startswith("optimizer.v.")):
            raise CheckpointError(f"{path}: unexpected tensor {name!r}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise CheckpointError(f"{path}: tensor {name} holds non-finite values")


# ---- save and read -----------------------------------------------------------------------------------------------

def save_checkpoint(path, trainer, info=None) -> None:
    """Saves `trainer` (an elasticzo.ElasticZO) with `info` (model/dataset names and the like) to `path`."""
    tensors, exponents = split_exponents({f"model.{k}": v for k, v in trainer.model.state_dict().items()})
    opt = trainer.core.optimizer_state()
    for i, (m, v) in enumerate(zip(opt["m"], opt["v"])):
        tensors[f"optimizer.m.{i}"] = m
        tensors[f"optimizer.v.{i}"] = v
    state = {
        "info": dict(info or {}),
        "config": trainer.config,
        "layers": model_layers(trainer.model),
        "epoch": trainer.epoch,
        "batch_in_epoch": trainer.batch_in_epoch,
        # repr round-trips a float exactly, so the resumed epoch's mean loss is the same
        "epoch_loss_sum": repr(trainer.epoch_loss_sum),
        "steps_done": trainer.core.steps_done,
        "optimizer_steps": opt["steps"],
        "history": trainer.history,
        # INT8*: the current epoch's count of steps whose integer sign agreed with the floating-point one, and of
        # ties and undecided steps
        "sign_agreement": list(trainer.core.sign_agreement),
        "sign_ties": list(trainer.core.sign_ties),
    }
    metadata = {"format": FORMAT, "state": json.dumps(state), "exponents": json.dumps(exponents)}
    metadata["sha256"] = checksum(tensors, metadata)
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_checkpoint(path):
    """(tensors, state) from a checkpoint file; CheckpointError if it is missing, corrupt, modified or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    fmt = metadata.get("format")
    if fmt in OLD_FORMATS:
        warnings.warn(f"{path} was written by an older elasticzo without a checksum; it cannot be verified",
                      stacklevel=2)
    elif fmt != FORMAT:
        raise CheckpointError(f"{path} is not an elasticzo checkpoint (format {fmt!r})")
    elif metadata.get("sha256") != checksum(tensors, metadata):
        raise CheckpointError(f"{path} fails its checksum: the file was modified or damaged after it was saved")
    try:
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has a damaged trainer state: {exc}") from exc
    if fmt in OLD_FORMATS and isinstance(state, dict):
        state.setdefault("layers", [])
    check_state(state, path)
    _check_tensors(tensors, path)
    try:
        exponents = json.loads(metadata.get("exponents", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has damaged exponents: {exc}") from exc
    _check_exponents(tensors, exponents, path)
    tensors.update({name + EXPONENT: np.array(e, dtype=np.int32) for name, e in exponents.items()})
    return tensors, state


def load_model_parameters(model, tensors: dict, path="checkpoint") -> None:
    """Copies the checkpoint's parameters into `model`, checking names, dtypes and shapes (all before any copy)."""
    names = model.parameter_names()
    stored = sorted(k[len("model."):] for k in tensors if k.startswith("model.") and not k.endswith(EXPONENT))
    if sorted(names) != stored:
        raise CheckpointError(f"{path} holds parameters {stored}, the model has {sorted(names)}")
    for name in names:
        value, want = tensors[f"model.{name}"], model.parameter(name)
        if value.dtype != want.dtype or value.shape != want.shape:
            raise CheckpointError(f"{path}: parameter {name} is {value.dtype} {value.shape}, the model's is "
                                  f"{want.dtype} {want.shape}")
    for name in names:
        exponent = tensors.get(f"model.{name}{EXPONENT}")
        model.set_parameter(name, tensors[f"model.{name}"], None if exponent is None else int(exponent))


def restore_trainer(trainer, tensors: dict, state: dict, path="checkpoint") -> None:
    """Puts `trainer` back where the checkpoint left it. The trainer must have been built with the checkpoint's
    partition point, optimizer and seed (they fix the optimizer state, every z and every batch order); learning
    rates, eps and clip may differ (a resumed run may change them on purpose)."""
    check_state(state, path)
    saved = state["config"]
    saved = dict(saved, augment=saved.get("augment", "none"))
    for key in ("zo_layers", "optimizer", "seed", "augment"):
        if trainer.config[key] != saved[key]:
            raise CheckpointError(f"{path} was trained with {key} {saved[key]!r}, this trainer has "
                                  f"{trainer.config[key]!r}")
    count = sum(1 for k in tensors if k.startswith("optimizer.m."))
    expected = {f"optimizer.{mv}.{i}" for mv in "mv" for i in range(count)}
    if {k for k in tensors if k.startswith("optimizer.")} != expected:
        raise CheckpointError(f"{path}: the optimizer moments are not pairs optimizer.m.i / optimizer.v.i")
    load_model_parameters(trainer.model, tensors, path)
    if count:
        m = [tensors[f"optimizer.m.{i}"] for i in range(count)]
        v = [tensors[f"optimizer.v.{i}"] for i in range(count)]
        try:
            trainer.core.load_optimizer_state(state["optimizer_steps"], m, v)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit: {exc}") from exc
    trainer.epoch = state["epoch"]
    trainer.batch_in_epoch = state["batch_in_epoch"]
    trainer.epoch_loss_sum = float(state["epoch_loss_sum"])
    trainer.core.steps_done = state["steps_done"]
    trainer.core.sign_agreement = tuple(state.get("sign_agreement", (0, 0)))
    trainer.core.sign_ties = tuple(state.get("sign_ties", (0, 0)))  # absent before ties were counted
    trainer.history = list(state["history"])


def load_trainer(path, **overrides):
    """An elasticzo.ElasticZO rebuilt from a checkpoint (its model, config and position), ready to continue.

    `overrides` replace config values that a resumed run may change (lr_zo, lr_bp, eps, grad_clip)."""
    from elasticzo.trainer import ElasticZO

    tensors, state = read_checkpoint(path)
    if not state["layers"]:
        raise CheckpointError(f"{path} does not describe its model's layers; build the model and use "
                              "restore_trainer")
    allowed = {"lr_zo", "lr_bp", "eps", "grad_clip"}
    if set(overrides) - allowed:
        raise ValueError(f"load_trainer can override only {sorted(allowed)}, got {sorted(overrides)}")
    cfg = dict(state["config"], **overrides)
    cfg.pop("method", None)
    trainer = ElasticZO(build_model(state["layers"]), **cfg)
    restore_trainer(trainer, tensors, state, path)
    return trainer
