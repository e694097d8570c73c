"""Weights in and out by name: PyTorch state dicts (.pt) and .safetensors files in, .safetensors out.

Names and shapes are PyTorch's ('conv1.weight', 'fc3.bias', ...), so a LeNet-5 trained in PyTorch loads as is and
the exported file loads back into the same PyTorch module. An int8 (NITI) parameter is quantized on import from
float weights (int8 mantissas and one power-of-two exponent, NITI's rule) and dequantized to float32 on export,
since PyTorch has no such dtype; `save_safetensors(..., dequantize=False)` keeps the mantissas and exponents instead
(int8 and int32 tensors, '<name>.exponent'), which load back bit for bit. torch is imported only to read a .pt
file, never otherwise.
"""

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from elasticzo import _core
from elasticzo.checkpoint import FORMAT, OLD_FORMATS, CheckpointError, atomic_write, read_checkpoint
from elasticzo.nn import EXPONENT, load_state_dict

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
                bf16 = [k for k in f.keys() if f.get_slice(k).get_dtype() == "BF16"]
                return {**{k: f.get_tensor(k) for k in f.keys() if k not in bf16}, **_bf16_as_float32(path, bf16)}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}); a PyTorch file needs the suffix "
                         f"{', '.join(TORCH_SUFFIXES)}") from exc
    # A checkpoint of `elasticzo train --out` or ElasticZO.save: its model's parameters, after the checksum.
    try:
        tensors, _ = read_checkpoint(path)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc
    return {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}


def _bf16_as_float32(path, names) -> dict:
    """The bfloat16 tensors `names` of a safetensors file as float32, which safetensors' numpy backend cannot give
    (numpy has no bfloat16); exact, as bfloat16 is the upper half of a float32. The format: a little-endian u64
    header size, the JSON header (dtype, shape, byte offsets after it), then the data, little-endian."""
    if not names:
        return {}
    raw = Path(path).read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    out = {}
    for name in names:
        begin, end = header[name]["data_offsets"]
        bits = np.frombuffer(raw, "<u2", (end - begin) // 2, 8 + size + begin)
        out[name] = (bits.astype("<u4") << 16).view("<f4").astype(np.float32).reshape(header[name]["shape"])
    return out


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


def from_torch(state_dict_or_path, model, strict=True, drop_biases=False):
    """Loads weights into `model` by name and returns the model.

    `state_dict_or_path`: a mapping of name -> numpy array or torch tensor (a torch.nn.Module's state_dict()), a
    torch.nn.Module itself, or the path of a .safetensors file, an elasticzo checkpoint or a PyTorch .pt state dict.
    Every missing, unexpected (when strict), mis-shaped, non-floating or non-finite entry is named in one
    ValueError and nothing is copied. Float weights given for an int8 model are quantized (NITI); an int8 model
    has no biases, so a source with biases is refused unless drop_biases=True (then dropped with a warning).
    """
    source = state_dict_or_path
    if hasattr(source, "state_dict") and callable(source.state_dict) and not isinstance(source, Mapping):
        source = source.state_dict()
    if isinstance(source, (str, Path)):
        try:
            load_state_dict(model, read_weights(source), strict=strict, drop_biases=drop_biases)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        return model
    if not isinstance(source, Mapping):
        raise TypeError("from_torch takes a state dict, a torch.nn.Module or a file path, got "
                        f"{type(source).__name__}")
    load_state_dict(model, source, strict=strict, drop_biases=drop_biases)
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


def save_safetensors(model, path, metadata=None, dequantize=True) -> None:
    """Writes the model's parameters (PyTorch's names) to a .safetensors file, atomically.

    dequantize=True (default): float32 only, int8 parameters as mantissa * 2^exponent; PyTorch reads it back with
    `module.load_state_dict(safetensors.torch.load_file(path))`. dequantize=False: an int8 parameter is written as
    its int8 mantissas and an int32 scalar '<name>.exponent' (model.state_dict() as is), which from_torch loads
    back bit for bit (into an int8 model; a float32 model takes their value)."""
    meta = {"producer": f"elasticzo {_core.__version__}", **(metadata or {})}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise TypeError("metadata must map str to str (the safetensors header holds only strings)")
    # np.require, not ascontiguousarray: that one makes a 0-d exponent 1-d
    tensors = float_state_dict(model) if dequantize else {k: np.require(v, requirements="C")
                                                          for k, v in model.state_dict().items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))
