"""Checkpoints in safetensors: model parameters, optimizer state and the trainer's position, written atomically.

Resuming from a checkpoint continues bit-identically: parameters and Adam moments are stored exactly, every
perturbation is regenerated from (seed, step) and every batch order from (seed, epoch).
"""

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

FORMAT = "elasticzo-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over `path`: a reader never sees a half-written file, even after a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path, trainer, info: dict) -> None:
    """Saves `trainer` (an elasticzo.ElasticZO) with `info` (model/dataset names and the like) to `path`."""
    tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    opt = trainer.core.optimizer_state()
    for i, (m, v) in enumerate(zip(opt["m"], opt["v"])):
        tensors[f"optimizer.m.{i}"] = m
        tensors[f"optimizer.v.{i}"] = v
    state = {
        "info": info,
        "config": trainer.config,
        "epoch": trainer.epoch,
        "batch_in_epoch": trainer.batch_in_epoch,
        # repr round-trips a float exactly, so the resumed epoch's mean loss is the same
        "epoch_loss_sum": repr(trainer.epoch_loss_sum),
        "steps_done": trainer.core.steps_done,
        "optimizer_steps": opt["steps"],
        "history": trainer.history,
    }
    metadata = {"format": FORMAT, "state": json.dumps(state)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_checkpoint(path):
    """(tensors, state) from a checkpoint file; CheckpointError if it is missing, corrupt or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an elasticzo checkpoint (format {metadata.get('format')!r})")
    try:
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has a damaged trainer state: {exc}") from exc
    return tensors, state


def load_model_parameters(model, tensors: dict, path="checkpoint") -> None:
    """Copies the checkpoint's parameters into `model`, checking names and shapes."""
    names = model.parameter_names()
    stored = sorted(k[len("model."):] for k in tensors if k.startswith("model."))
    if sorted(names) != stored:
        raise CheckpointError(f"{path} holds parameters {stored}, the model has {sorted(names)}")
    for name in names:
        value = np.ascontiguousarray(tensors[f"model.{name}"], dtype=np.float32)
        try:
            model.set_parameter(name, value)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: parameter {name}: {exc}") from exc


def restore_trainer(trainer, tensors: dict, state: dict, path="checkpoint") -> None:
    """Puts `trainer` (built with the checkpoint's config) back where the checkpoint left it."""
    load_model_parameters(trainer.model, tensors, path)
    trainer.epoch = int(state["epoch"])
    trainer.batch_in_epoch = int(state["batch_in_epoch"])
    trainer.epoch_loss_sum = float(state["epoch_loss_sum"])
    trainer.core.steps_done = int(state["steps_done"])
    trainer.history = list(state.get("history", []))
    count = sum(1 for k in tensors if k.startswith("optimizer.m."))
    if count:
        m = [tensors[f"optimizer.m.{i}"] for i in range(count)]
        v = [tensors[f"optimizer.v.{i}"] for i in range(count)]
        try:
            trainer.core.load_optimizer_state(int(state["optimizer_steps"]), m, v)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit: {exc}") from exc
