"""ElasticZO training driver: epochs, learning-rate decay, metrics and the time breakdown. Every step runs in C++."""

import contextlib
import signal
import threading
import time
from dataclasses import replace

import numpy as np

from elasticzo import _core, models
from elasticzo.rounding import rounding_policy
from elasticzo.data.arrays import as_dataset
from elasticzo.data.augment import augment_points, check_augment
from elasticzo.data.batches import batches, drops_small_last, training_batches_per_epoch
from elasticzo.data.dataset import Dataset
from elasticzo.memory import DEFAULT_MEMORY_PLAN, choose_partition
from elasticzo.methods import method_name, zo_layers_for
from elasticzo.schedule import StepDecay

# The defaults are written once, in C++ (ElasticZOConfig), and the decay's in schedule.StepDecay. A float32 default
# is shown as the shortest decimal that gives the same float32 (0.001, not 0.0010000000474974513).
_DEFAULTS = {k: float(str(np.float32(v))) if isinstance(v, float) else v for k, v in _core.default_config().items()}
_DECAY = StepDecay()

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


def _first_mu(value):
    """The trainer's `gradient_bits`: None (the paper's schedule) or the first mu of it, an int in [0, 7]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 7:
        raise ValueError(f"gradient_bits (the first mu of NITI's schedule) must be an int in [0, 7] or None, got "
                         f"{value!r}")
    return int(value)


def _p_zero_setting(value):
    """The trainer's `zo_p_zero`: None (the paper's schedule), a fraction in [0, 1], or three fractions for the
    schedule's phases (epochs 0-19, 20-49, 50 on), as a list."""
    if value is None:
        return None
    phases = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(phases) not in (1, 3) or not all(isinstance(p, (int, float, np.floating, np.integer)) and
                                            not isinstance(p, bool) for p in phases):
        raise ValueError(f"zo_p_zero must be None, a fraction or three fractions (one per phase of the paper's "
                         f"schedule: epochs 0-19, 20-49, 50 on), got {value!r}")
    for p in phases:
        _core.int8_zo_zero_threshold(float(p))  # ValueError for a value outside [0, 1]
    return [float(p) for p in phases] if isinstance(value, (list, tuple)) else float(value)


class ElasticZO:
    """Trains parameter layers [0, C) of `model` by zeroth-order SPSA and the rest by backprop (SPEC §3).

    Give either `method` ('full-zo', 'zo-feat-cls2', 'zo-feat-cls1', 'full-bp') or `zo_layers` (C).
    Learning rates decay by `lr_decay` every `lr_decay_every` epochs (the paper: 0.8 every 10). The defaults are
    LeNet-5's tuned ZO-Feat-Cls1 values; elasticzo.hparams.defaults(...) has the tuned ones of every model,
    dataset and method.
    The model's precision chooses the arithmetic (`precision`, if given, must match it): 'fp32', or 'int8'
    (ElasticZO-INT8: NITI's integer backprop for the BP part, whose learning rate is the gradient bit-width mu of
    NITI's weight update, 5, then 4 from epoch 20, then 3 from epoch 50 (`gradient_bits` = mu0 starts the same
    schedule at mu0: mu0, mu0 - 1, mu0 - 2, at least 0); the ZO part perturbed by sparse int8 zeta,
    |zeta| <= zo_range, a fraction zo_p_zero zeroed (None: the paper's schedule 0.33, 0.5 from epoch 20, 0.9 from
    epoch 50; a fraction: fixed; three fractions: other values for the schedule's three phases), updated by the ternary gradient times zeta rounded to zo_update_bits bits; lr_*, eps and clip do
    not apply). precision='int8-intonly' (an int8 model) takes the ternary gradient from integer arithmetic only
    (the paper's INT8*: log2 of the loss with log2_frac_bits fractional bits, 0 for the paper's floor) instead of
    the floating-point loss of the dequantized logits; each epoch then reports `sign_agreement`, the fraction of
    steps whose integer sign equals the floating-point one, `sign_ties`, the fraction where the integer losses tie
    (g = 0, no update) while the floating-point ones differ, and `sign_agreement_decided`, the agreement over the
    steps the integer sign decides (g != 0).
    `rounding` (int8 models): NITI's rounding scheme per tensor class, None (its first commit), 'final-version' or a
    mapping such as {'activations': 'nearest', 'errors': 'stochastic'} (elasticzo.rounding); the model keeps it
    for evaluation.
    `memory_plan`: 'lifetime' (buffers whose lifetimes do not overlap share memory) or 'static' (the paper's model);
    the same results bit for bit. `memory_budget` (bytes or '3MiB', with `input_shape` of a minibatch) instead of
    method / zo_layers: the partition with the most backprop layers whose measured step fits
    (`partition_choice` says which and why).
    `augment`: 'none', or 'pointcloud' (point clouds (points, 3): a random rotation about z and a small jitter per
    training batch, drawn from (seed, epoch, batch), so resuming sees the same batches).
    """

    def __init__(self, model, zo_layers=None, *, method=None, lr_zo=_DEFAULTS["lr_zo"], lr_bp=_DEFAULTS["lr_bp"],
                 eps=_DEFAULTS["eps"], grad_clip=_DEFAULTS["grad_clip"], clean_bp_pass=_DEFAULTS["clean_bp_pass"],
                 optimizer=_DEFAULTS["optimizer"], seed=_DEFAULTS["seed"], lr_decay=_DECAY.factor,
                 lr_decay_every=_DECAY.every, memory_plan=DEFAULT_MEMORY_PLAN, memory_budget=None, input_shape=None,
                 augment="none", precision=None, zo_range=_DEFAULTS["zo_range"], zo_p_zero=None,
                 zo_update_bits=_DEFAULTS["zo_update_bits"], log2_frac_bits=_DEFAULTS["log2_frac_bits"],
                 gradient_bits=None, rounding=None):
        precision = model.precision if precision is None else precision
        arithmetic = models.arithmetic(precision)
        if arithmetic != model.precision:
            raise ValueError(f"precision {precision!r} but the model computes in {model.precision!r}: build it "
                             f"with precision={arithmetic!r} (e.g. elasticzo.models.lenet5(precision={arithmetic!r}))")
        layers = model.num_param_layers
        self.partition_choice = None
        if memory_budget is not None:
            if zo_layers is not None or method is not None:
                raise ValueError("memory_budget chooses the partition: give it instead of zo_layers / method")
            if input_shape is None:
                raise ValueError("memory_budget needs input_shape, the shape of a minibatch (batch first)")
            num_classes = model.output_shape(list(input_shape))[-1]
            self.partition_choice = choose_partition(model, tuple(input_shape), memory_budget,
                                                     num_classes=num_classes, memory_plan=memory_plan,
                                                     optimizer=optimizer)
            zo_layers = self.partition_choice["zo_layers"]
        if (zo_layers is None) == (method is None):
            raise ValueError("give exactly one of zo_layers (an int) or method (a name)")
        if method is not None:
            zo_layers = zo_layers_for(method, layers)
        if isinstance(zo_layers, bool) or not isinstance(zo_layers, (int, np.integer)):
            raise ValueError(f"zo_layers must be an int, got {zo_layers!r}")
        self.model = model
        self.zo_layers = int(zo_layers)
        self.method = method_name(self.zo_layers, layers)
        self.base_lr_zo = float(lr_zo)
        self.base_lr_bp = float(lr_bp)
        self.schedule = StepDecay(lr_decay, lr_decay_every)
        self.lr_decay, self.lr_decay_every = self.schedule.factor, self.schedule.every
        self.seed = _core.check_seed(seed)
        self.augment = check_augment(augment)
        self.config = dict(zo_layers=self.zo_layers, method=self.method, lr_zo=self.base_lr_zo,
                           lr_bp=self.base_lr_bp, eps=float(eps), grad_clip=float(grad_clip),
                           clean_bp_pass=bool(clean_bp_pass), optimizer=optimizer, seed=self.seed,
                           lr_decay=self.lr_decay, lr_decay_every=lr_decay_every, memory_plan=memory_plan,
                           augment=self.augment)
        first_mu = _first_mu(gradient_bits)
        zo_p_zero = _p_zero_setting(zo_p_zero)
        int8 = model.precision == "int8"
        if rounding is not None and not int8:
            raise ValueError("rounding chooses NITI's integer rounding: it applies to int8 models only")
        rounding = rounding_policy(rounding)
        if int8:  # ElasticZO-INT8's settings, recorded only for int8 models (an FP32 run's config is unchanged)
            self.config.update(zo_range=int(zo_range), zo_p_zero=zo_p_zero,
                               zo_update_bits=int(zo_update_bits), log2_frac_bits=int(log2_frac_bits),
                               gradient_bits=first_mu, rounding=rounding)
        self.core = _core.ElasticZO(model, self.zo_layers, eps=eps, lr_zo=lr_zo, lr_bp=lr_bp, grad_clip=grad_clip,
                                    clean_bp_pass=clean_bp_pass, optimizer=optimizer, seed=self.seed,
                                    memory_plan=memory_plan, zo_range=zo_range,
                                    zo_p_zero=_DEFAULTS["zo_p_zero"] if zo_p_zero is None else
                                    zo_p_zero[0] if isinstance(zo_p_zero, list) else zo_p_zero,
                                    zo_update_bits=zo_update_bits, integer_sign=precision == "int8-intonly",
                                    log2_frac_bits=log2_frac_bits, rounding=rounding)
        # The model's precision chooses the numeric policy: 'int8' trains by ElasticZO-INT8 and NITI backprop,
        # whose learning rate is the gradient bit-width mu of its weight update (_core.int8_mu_for_epoch).
        self.precision = precision
        self.zo_p_zero = zo_p_zero
        self.first_mu = first_mu
        self.config["precision"] = self.precision
        # Position in training, saved by checkpoints: epochs finished, batches done in the current epoch and the
        # running loss sum of that epoch.
        self.epoch = 0
        self.batch_in_epoch = 0
        self.epoch_loss_sum = 0.0
        self.history = []

    def learning_rates(self, epoch: int):
        """(lr_zo, lr_bp) in effect during `epoch` (0-based)."""
        return self.schedule(self.base_lr_zo, epoch), self.schedule(self.base_lr_bp, epoch)

    def gradient_bits(self, epoch: int):
        """INT8: NITI's gradient bit-width mu in effect during `epoch` (0-based): 5, 4 from epoch 20, 3 from 50, or
        the same steps down from the trainer's `gradient_bits` (never below 0)."""
        paper = _core.int8_mu_for_epoch(epoch)
        if self.first_mu is None:
            return paper
        return max(0, self.first_mu + paper - _core.int8_mu_for_epoch(0))

    def zo_sparsity(self, epoch: int):
        """INT8: the fraction of zeta zeroed during `epoch` (0-based): zo_p_zero (fixed, or its value for the
        epoch's phase), else the paper's schedule."""
        if isinstance(self.zo_p_zero, list):  # the p_zero phases are the mu schedule's (epochs 20 and 50)
            return self.zo_p_zero[_core.int8_mu_for_epoch(0) - _core.int8_mu_for_epoch(epoch)]
        return _core.int8_zo_p_zero_for_epoch(epoch) if self.zo_p_zero is None else self.zo_p_zero

    def start_epoch(self, epoch: int):
        """Sets the C++ step's learning rates (and, for an int8 model, mu and p_zero) to those of `epoch`; returns
        the rates."""
        rates = self.learning_rates(epoch)
        self.core.set_learning_rates(*rates)
        if self.model.precision == "int8":
            self.core.gradient_bits = self.gradient_bits(epoch)
            self.core.zo_p_zero = self.zo_sparsity(epoch)
        return rates

    def train_epoch(self, train, batch_size: int, *, progress=None, on_step=None) -> dict:
        """Runs (the rest of) epoch `self.epoch` over a Dataset; returns its metrics.

        on_step(trainer, loss) runs after every step with that step's loss (the mean of its two passes).
        Ctrl-C stops it after the step in flight, with the trainer's position matching its weights."""
        _check_callbacks(on_step=on_step)
        with _deferred_interrupts():
            return self._train_epoch(train, batch_size, progress, on_step)

    def _train_epoch(self, train, batch_size, progress, on_step):
        lr_zo, lr_bp = self.start_epoch(self.epoch)
        if self.batch_in_epoch == 0:  # counted per epoch (a resumed epoch keeps its counts: checkpoint)
            self.core.sign_agreement = (0, 0)
            self.core.sign_ties = (0, 0)
        self.core.clear_times()
        _core.reset_peak_memory()
        total = training_batches_per_epoch(len(train), batch_size)
        data_time = 0.0
        start = time.perf_counter()
        it = self.training_batches(train, batch_size, self.epoch, self.batch_in_epoch)
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            data_time += time.perf_counter() - t0
            if batch is None:
                break
            loss = self.core.step(*batch)["loss"]
            self.epoch_loss_sum += loss
            self.batch_in_epoch += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if on_step is not None:
                on_step(self, loss)
            _interrupt_point()
        seconds = time.perf_counter() - start
        metrics = {
            "epoch": self.epoch + 1,
            "train_loss": self.epoch_loss_sum / max(total, 1),
            "lr_zo": lr_zo,
            "lr_bp": lr_bp,
            **self._int8_metrics(),
            "seconds": seconds,
            "peak_memory_bytes": _core.memory_stats()["total_peak"],
            "time_breakdown": self._breakdown(seconds, data_time),
        }
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_loss_sum = 0.0
        return metrics

    def training_batches(self, train, batch_size, epoch, start_batch=0):
        """The (x, y) training batches of `epoch` from batch index `start_batch` on: shuffled by (seed, epoch),
        augmented by (seed, epoch, batch index) when the trainer augments, without a last batch of less than half
        `batch_size` (data.drops_small_last)."""
        if self.augment != "none":
            check_augment(self.augment, train.sample_shape)
        it = batches(train, batch_size, shuffle=True, seed=self.seed, epoch=epoch, start_batch=start_batch,
                     drop_last=drops_small_last(len(train), batch_size))
        for b, (x, y) in enumerate(it, start_batch):
            yield (augment_points(x, self.seed, epoch, b) if self.augment == "pointcloud" else x), y

    def _int8_metrics(self):
        if self.model.precision != "int8":
            return {}
        out = {"gradient_bits": self.core.gradient_bits}
        if self.zo_layers > 0:
            out["zo_p_zero"] = self.core.zo_p_zero
        if self.precision == "int8-intonly" and self.zo_layers > 0:
            out.update(sign_statistics(*self.core.sign_agreement, *self.core.sign_ties))
        return out

    def _breakdown(self, seconds, data_time):
        core = self.core.times()
        out = {p: core.get(p, 0.0) for p in ("forward", "zo_perturb", "zo_update", "loss")}
        out["backward"] = core["backward"] + core["optimizer"]  # the BP part's gradients and its weight update
        out["data"] = data_time
        out["other"] = max(seconds - sum(out.values()), 0.0)
        return {p: out[p] for p in PHASES}

    def fit(self, data, y=None, *, epochs=None, until_epoch=None, batch_size: int = 64, test=None, progress=True,
            on_epoch_end=None, on_step=None) -> list:
        """Trains on `data`: a Dataset, or samples x (numpy uint8/float16/float32/float64) with integer labels y.

        `epochs` is an increment: this call runs that many more epochs (default 1); an epoch left half done by an
        interrupted run is finished first and counts as one. `until_epoch` is a total instead: train until
        `until_epoch` epochs are done (nothing to do if they already are), which is what resuming a run wants.
        Give at most one of them. `test`: a Dataset or an (x, y) pair, evaluated after every epoch. Arrays are
        checked once here and converted to float32 one batch at a time. on_step(trainer, loss) runs after every
        step, on_epoch_end(trainer, metrics) after every epoch. Returns the metrics of every epoch so far.

        Ctrl-C raises KeyboardInterrupt after the step in flight (or after the epoch's evaluation and on_epoch_end),
        so `save(path)` then `ElasticZO.load(path).fit(..., until_epoch=N)` continues exactly as if never
        interrupted."""
        if epochs is not None and until_epoch is not None:
            raise ValueError("give epochs (how many more) or until_epoch (the total), not both")
        if until_epoch is None:
            epochs = 1 if epochs is None else epochs
            _check_count(epochs, "epochs")
            until_epoch = self.epoch + epochs
        else:
            _check_count(until_epoch, "until_epoch")
        _check_count(batch_size, "batch_size")
        _check_callbacks(on_epoch_end=on_epoch_end, on_step=on_step)
        train = model_dataset(self.model, data, y, "train")
        if test is not None:
            test = model_dataset(self.model, *(test if isinstance(test, tuple) else (test, None)), split="test")
        with _deferred_interrupts():
            return self._fit(train, until_epoch, batch_size, test, progress, on_epoch_end, on_step)

    def _fit(self, train, until_epoch, batch_size, test, progress, on_epoch_end, on_step):
        while self.epoch < until_epoch:
            bar = _progress_bar(progress, training_batches_per_epoch(len(train), batch_size), self.batch_in_epoch,
                                f"epoch {self.epoch + 1}/{until_epoch} {self.method}")
            try:
                metrics = self.train_epoch(train, batch_size, progress=bar, on_step=on_step)
            finally:
                if bar is not None:
                    bar.close()
            if test is not None:
                ev = evaluate(self.model, test, batch_size=batch_size)
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

    def evaluate(self, data, y=None, *, batch_size: int = 256) -> dict:
        """Mean loss and accuracy (fraction) of the model on a Dataset or on samples x with labels y."""
        return evaluate(self.model, data, y, batch_size=batch_size)


def sign_statistics(agreements, steps, ties, undecided) -> dict:
    """INT8*'s sign against the floating-point one over `steps` steps: `sign_agreement` (as the issue defines it: a
    step whose integer sign is 0 while the floating-point one is not counts as a disagreement), `sign_ties` (the
    fraction of such steps), `sign_agreement_decided` (agreement over the steps the integer sign decides, g != 0:
    the paper's "correct about 95% of the time"; None if it decided none) and the counts behind them."""
    decided = steps - undecided
    both_zero = undecided - ties  # agreements that decided nothing
    return {"sign_agreement": agreements / max(steps, 1), "sign_ties": ties / max(steps, 1),
            "sign_agreement_decided": (agreements - both_zero) / decided if decided else None,
            "sign_steps": steps, "sign_tie_steps": ties, "sign_undecided_steps": undecided}


def _check_callbacks(**callbacks):
    """TypeError before any step for a callback that cannot be called: found after the first step, the weights would
    have moved already."""
    for name, fn in callbacks.items():
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable (or None), got {type(fn).__name__}")


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def model_dataset(model, data, y=None, split="test") -> Dataset:
    """`data` (a Dataset, or arrays x and y) as a Dataset whose samples `model` reads and whose labels are among its
    outputs; (N, H, W) images gain the channel axis a convolutional model needs (a view)."""
    if isinstance(data, Dataset):
        if y is not None:
            raise TypeError("y goes with an array x; a Dataset carries its own labels (give epochs= by keyword)")
        ds = data
    else:
        ds = as_dataset(data, y, split=split)
    if not len(ds):
        raise ValueError(f"{ds.name} {split}: holds no samples")
    try:
        out = model.output_shape([1, *ds.sample_shape])
    except ValueError as mismatch:
        out = _output_with_channel_axis(model, ds.sample_shape)
        if out is None:
            raise ValueError(f"{ds.name} {split}: samples of shape {tuple(ds.sample_shape)} do not fit the model: "
                             f"{mismatch}") from None
        ds = replace(ds, x=ds.x[:, None])
    if len(out) != 2:
        raise ValueError(f"the model's output has shape {tuple(out)} for one sample; a classifier gives "
                         f"(1, classes)")
    if out[1] < 2:  # softmax over one logit is 1 whatever the input: the loss and its gradient are 0
        raise ValueError(f"{ds.name} {split}: the model has {out[1]} output; a classifier needs at least 2 classes "
                         f"(over one, the loss is 0 for every input and nothing can be learned or measured)")
    high = int(np.argmax(ds.y))
    if ds.y[high] >= out[1]:
        raise ValueError(f"{ds.name} {split}: label {int(ds.y[high])} at index {high} is outside 0..{out[1] - 1}: "
                         f"the model has {out[1]} outputs")
    return ds


def _output_with_channel_axis(model, sample_shape):
    """The model's output shape for (H, W) images given their channel axis, or None if it reads no such input."""
    if len(sample_shape) != 2:
        return None
    try:
        return model.output_shape([1, 1, *sample_shape])
    except ValueError:
        return None


def evaluate(model, data, y=None, *, batch_size: int = 256) -> dict:
    """Mean softmax cross-entropy and accuracy (fraction) of `model` over a Dataset or arrays x, y, batch by batch."""
    dataset = model_dataset(model, data, y)
    correct = 0
    loss_sum = 0.0
    for x, labels in batches(dataset, batch_size, shuffle=False):
        logits = model.forward(x).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum += float(-log_probs[np.arange(len(labels)), labels].sum())
        correct += int((logits.argmax(axis=1) == labels).sum())
    return {"loss": loss_sum / len(dataset), "accuracy": correct / len(dataset)}


def _progress_bar(enabled, total, initial, desc):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
