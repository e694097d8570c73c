"""ElasticZO training driver: epochs, learning-rate decay, metrics and the time breakdown. Every step runs in C++."""

import contextlib
import math
import signal
import threading
import time

import numpy as np

from elasticzo import _core
from elasticzo.data.batches import batches, num_batches
from elasticzo.methods import method_name, zo_layers_for

# Phases of the paper's Fig. 7 plus the Python side's data and the rest.
PHASES = ("forward", "backward", "zo_perturb", "zo_update", "loss", "data", "other")


# Ctrl-C (SIGINT) while training is held until the step in flight is accounted for (weights, step count, batch
# index and loss sum agree), then handed to the handler that was installed before (Python's raises
# KeyboardInterrupt; IPython's or the CLI's do what they do), so a checkpoint saved after catching it resumes
# exactly. Without this Python raises it right after the C++ step returns and before the batch is counted, and the
# batch is trained twice on resume. Only the main thread receives signals.
_pending_interrupts = []
_held_handlers = []  # the SIGINT handler in place before the outermost _deferred_interrupts


@contextlib.contextmanager
def _deferred_interrupts():
    previous = signal.getsignal(signal.SIGINT)
    if _held_handlers or threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN,
                                                                                                     None):
        yield
        return
    _pending_interrupts.clear()
    _held_handlers.append(previous)
    signal.signal(signal.SIGINT, lambda signum, frame: _pending_interrupts.append(signum))
    try:
        yield
        _interrupt_point()
    finally:
        signal.signal(signal.SIGINT, previous)
        _held_handlers.pop()


def _interrupt_point():
    """Delivers a SIGINT held back by _deferred_interrupts, at a point where resuming is exact."""
    if _pending_interrupts and _held_handlers:
        _pending_interrupts.clear()
        handler = _held_handlers[-1]
        if not callable(handler):  # SIG_DFL would end the process: stop the way Python's own handler does
            raise KeyboardInterrupt
        handler(signal.SIGINT, None)


def _positive(value, name):
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


class ElasticZO:
    """Trains parameter layers [0, C) of `model` by zeroth-order SPSA and the rest by backprop (SPEC §3).

    Give either `method` ('full-zo', 'zo-feat-cls2', 'zo-feat-cls1', 'full-bp') or `zo_layers` (C).
    Learning rates decay by `lr_decay` every `lr_decay_every` epochs (the paper: 0.8 every 10).
    """

    def __init__(self, model, zo_layers=None, *, method=None, lr_zo=5e-4, lr_bp=0.05, eps=1e-3, grad_clip=100.0,
                 clean_bp_pass=False, optimizer="sgd", seed=0, lr_decay=0.8, lr_decay_every=10):
        layers = model.num_param_layers
        if (zo_layers is None) == (method is None):
            raise ValueError("give exactly one of zo_layers (an int) or method (a name)")
        if method is not None:
            zo_layers = zo_layers_for(method, layers)
        if isinstance(zo_layers, bool) or not isinstance(zo_layers, (int, np.integer)):
            raise ValueError(f"zo_layers must be an int, got {zo_layers!r}")
        self.model = model
        self._modules = len(model)  # a layer added later would never be trained: steps refuse it (_check_model)
        self.zo_layers = int(zo_layers)
        self.method = method_name(self.zo_layers, layers)
        self.base_lr_zo = float(lr_zo)
        self.base_lr_bp = float(lr_bp)
        self.lr_decay = _positive(lr_decay, "lr_decay")
        if isinstance(lr_decay_every, bool) or not isinstance(lr_decay_every, int) or lr_decay_every < 1:
            raise ValueError(f"lr_decay_every must be an int >= 1, got {lr_decay_every!r}")
        self.lr_decay_every = lr_decay_every
        self.seed = int(seed)
        self.config = dict(zo_layers=self.zo_layers, method=self.method, lr_zo=self.base_lr_zo,
                           lr_bp=self.base_lr_bp, eps=float(eps), grad_clip=float(grad_clip),
                           clean_bp_pass=bool(clean_bp_pass), optimizer=optimizer, seed=self.seed,
                           lr_decay=self.lr_decay, lr_decay_every=lr_decay_every)
        self.core = _core.ElasticZO(model, self.zo_layers, eps=eps, lr_zo=lr_zo, lr_bp=lr_bp, grad_clip=grad_clip,
                                    clean_bp_pass=clean_bp_pass, optimizer=optimizer, seed=self.seed)
        # Position in training, saved by checkpoints: epochs finished, batches done in the current epoch and the
        # running loss sum of that epoch.
        self.epoch = 0
        self.batch_in_epoch = 0
        self.epoch_loss_sum = 0.0
        self.history = []

    def learning_rates(self, epoch: int):
        """(lr_zo, lr_bp) in effect during `epoch` (0-based)."""
        factor = self.lr_decay ** (epoch // self.lr_decay_every)
        return self.base_lr_zo * factor, self.base_lr_bp * factor

    def train_epoch(self, train, batch_size: int, *, progress=None, on_step=None) -> dict:
        """Runs (the rest of) epoch `self.epoch`; returns its metrics. on_step(trainer) runs after every step.

        Ctrl-C stops it after the step in flight, with the trainer's position matching its weights."""
        with _deferred_interrupts():
            return self._train_epoch(train, batch_size, progress, on_step)

    def _check_model(self):
        if len(self.model) != self._modules:
            raise RuntimeError(f"the model has {len(self.model)} modules, {self._modules} when this trainer was built; "
                               "a layer added since would not be trained: build a new ElasticZO for the new model")

    def _train_epoch(self, train, batch_size, progress, on_step):
        self._check_model()
        lr_zo, lr_bp = self.learning_rates(self.epoch)
        self.core.set_learning_rates(lr_zo, lr_bp)
        self.core.clear_times()
        _core.reset_peak_memory()
        total = num_batches(len(train), batch_size)
        data_time = 0.0
        start = time.perf_counter()
        it = batches(train, batch_size, shuffle=True, seed=self.seed, epoch=self.epoch,
                     start_batch=self.batch_in_epoch)
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            data_time += time.perf_counter() - t0
            if batch is None:
                break
            self._check_model()
            stats = self.core.step(*batch)
            self.epoch_loss_sum += stats["loss"]
            self.batch_in_epoch += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{stats['loss']:.4f}", refresh=False)
            if on_step is not None:
                on_step(self)
            _interrupt_point()
        seconds = time.perf_counter() - start
        metrics = {
            "epoch": self.epoch + 1,
            "train_loss": self.epoch_loss_sum / max(total, 1),
            "lr_zo": lr_zo,
            "lr_bp": lr_bp,
            "seconds": seconds,
            "peak_memory_bytes": _core.memory_stats()["total_peak"],
            "time_breakdown": self._breakdown(seconds, data_time),
        }
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_loss_sum = 0.0
        return metrics

    def _breakdown(self, seconds, data_time):
        core = self.core.times()
        out = {p: core.get(p, 0.0) for p in ("forward", "zo_perturb", "zo_update", "loss")}
        out["backward"] = core["backward"] + core["optimizer"]  # the BP part's gradients and its weight update
        out["data"] = data_time
        out["other"] = max(seconds - sum(out.values()), 0.0)
        return {p: out[p] for p in PHASES}

    def fit(self, train, epochs: int, batch_size: int = 64, *, test=None, progress=True, on_epoch_end=None,
            on_step=None) -> list:
        """Trains until `epochs` epochs are done (continuing from self.epoch); returns the per-epoch metrics.

        Ctrl-C raises KeyboardInterrupt after the step in flight (or after the epoch's evaluation and on_epoch_end),
        so `save(path)` then `ElasticZO.load(path).fit(...)` continues exactly as if never interrupted."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        with _deferred_interrupts():
            return self._fit(train, epochs, batch_size, test, progress, on_epoch_end, on_step)

    def _fit(self, train, epochs, batch_size, test, progress, on_epoch_end, on_step):
        while self.epoch < epochs:
            bar = _progress_bar(progress, num_batches(len(train), batch_size), self.batch_in_epoch,
                                f"epoch {self.epoch + 1}/{epochs} {self.method}")
            try:
                metrics = self.train_epoch(train, batch_size, progress=bar, on_step=on_step)
            finally:
                if bar is not None:
                    bar.close()
            if test is not None:
                ev = self.evaluate(test, batch_size=batch_size)
                metrics.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"])
            self.history.append(metrics)
            if on_epoch_end is not None:
                on_epoch_end(self, metrics)
            _interrupt_point()
        return self.history

    def save(self, path, **info) -> None:
        """Writes a checkpoint (model layers and parameters, optimizer state, position, `info`) atomically."""
        from elasticzo.checkpoint import save_checkpoint

        save_checkpoint(path, self, info)

    @classmethod
    def load(cls, path, **overrides) -> "ElasticZO":
        """The trainer saved at `path`, with its model, ready to continue (see checkpoint.load_trainer)."""
        from elasticzo.checkpoint import load_trainer

        return load_trainer(path, **overrides)

    def evaluate(self, dataset, batch_size: int = 256) -> dict:
        """Mean loss and accuracy (fraction) of the model on a dataset."""
        return evaluate(self.model, dataset, batch_size)


def evaluate(model, dataset, batch_size: int = 256) -> dict:
    """Mean softmax cross-entropy and accuracy (fraction) of `model` over `dataset`."""
    correct = 0
    loss_sum = 0.0
    for x, y in batches(dataset, batch_size, shuffle=False):
        logits = model.forward(x).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum += float(-log_probs[np.arange(len(y)), y].sum())
        correct += int((logits.argmax(axis=1) == y).sum())
    return {"loss": loss_sum / len(dataset), "accuracy": correct / len(dataset)}


def _progress_bar(enabled, total, initial, desc):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
