"""Weights in and out by name: PyTorch state dicts (.pt) and .safetensors files in, .safetensors out.

Names and shapes are PyTorch's ('conv1.weight', 'fc3.bias', ...), so a LeNet-5 trained in PyTorch loads as is and
the exported file loads back into the same PyTorch module. An int8 (NITI) parameter is quantized on import from
float weights (int8 mantissas and one power-of-two exponent, NITI's rule) and dequantized to float32 on export,
since PyTorch has no such dtype. torch is imported only to read a .pt file, never otherwise.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from elasticzo import _core
from elasticzo.checkpoint import FORMAT, OLD_FORMATS, CheckpointError, atomic_write, read_checkpoint
from elasticzo.nn import _as_array, load_state_dict

EXPONENT = ".exponent"
_MODEL = "model."
TORCH_SUFFIXES = (".pt", ".pth", ".bin")  # read with torch.load; anything else as safetensors


def read_weights(path) -> dict:
    """{name: numpy array} from a .safetensors file, an elasticzo checkpoint (its model's parameters, checksum
    verified) or a PyTorch .pt/.pth file holding a state dict (needs torch). ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no weights file at {path}")
    return _read_torch(path) if path.suffix.lower() in TORCH_SUFFIXES else _read_safetensors(path)


def _read_safetensors(path) -> dict:
    try:
        with safe_open(str(path), framework="numpy") as f:
            fmt = (f.metadata() or {}).get("format")
            if fmt != FORMAT and fmt not in OLD_FORMATS:
                return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}); a PyTorch file needs the suffix "
                         f"{', '.join(TORCH_SUFFIXES)}") from exc
    # A checkpoint of `elasticzo train --out` or ElasticZO.save: its model's parameters, after the checksum.
    try:
        tensors, _ = read_checkpoint(path)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc
    return {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}


def _read_torch(path) -> dict:
    try:
        import torch
    except ImportError:
        raise ValueError(f"{path} is not a safetensors file; reading a PyTorch .pt file needs torch (pip install "
                         "torch), or save it as .safetensors in PyTorch: safetensors.torch.save_file(model."
                         "state_dict(), 'model.safetensors')") from None
    try:
        # weights_only: a .pt file is a pickle, and a state dict needs no code from it
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError...)
        raise ValueError(f"{path} is not a readable PyTorch state dict: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # the common {"state_dict": ..., "epoch": ...} training checkpoint
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict (save model.state_dict(), not the "
                         "model)")
    return dict(obj)


def _quantize_floats(model, state) -> dict:
    """Float values given for int8 parameters (without an exponent) become NITI mantissas and an exponent."""
    state = dict(state)
    for name in model.parameter_names():
        if model.parameter(name).dtype != np.int8 or name not in state or name + EXPONENT in state:
            continue
        value = _as_array(state[name], name)
        if value.dtype.kind == "f" and np.isfinite(value).all():
            state[name], state[name + EXPONENT] = _core.int8_quantize_input(
                np.ascontiguousarray(value, dtype=np.float32))
    return state


def from_torch(state_dict_or_path, model, strict=True):
    """Loads weights into `model` by name and returns the model.

    `state_dict_or_path`: a mapping of name -> numpy array or torch tensor (a torch.nn.Module's state_dict()), a
    torch.nn.Module itself, or the path of a .safetensors file, an elasticzo checkpoint or a PyTorch .pt state dict.
    Every missing, unexpected (when strict), mis-shaped, non-floating or non-finite entry is named in one
    ValueError and nothing is copied. Float weights given for an int8 model are quantized (NITI).
    """
    source = state_dict_or_path
    if hasattr(source, "state_dict") and callable(source.state_dict) and not isinstance(source, Mapping):
        source = source.state_dict()
    if isinstance(source, (str, Path)):
        try:
            load_state_dict(model, _quantize_floats(model, read_weights(source)), strict=strict)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        return model
    if not isinstance(source, Mapping):
        raise TypeError("from_torch takes a state dict, a torch.nn.Module or a file path, got "
                        f"{type(source).__name__}")
    load_state_dict(model, _quantize_floats(model, source), strict=strict)
    return model


def float_state_dict(model) -> dict:
    """The model's parameters by name as float32 arrays; int8 ones dequantized (mantissa * 2^exponent)."""
    state = model.state_dict()
    out = {}
    for name, value in state.items():
        if name.endswith(EXPONENT):
            continue
        if value.dtype == np.int8:
            value = np.ldexp(value.astype(np.float32), int(state[name + EXPONENT])).astype(np.float32)
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def save_safetensors(model, path, metadata=None) -> None:
    """Writes the model's parameters (float32, PyTorch's names) to a .safetensors file, atomically.

    PyTorch reads it back with `module.load_state_dict(safetensors.torch.load_file(path))`."""
    meta = {"producer": f"elasticzo {_core.__version__}", **(metadata or {})}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise TypeError("metadata must map str to str (the safetensors header holds only strings)")
    tensors = float_state_dict(model)
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))
