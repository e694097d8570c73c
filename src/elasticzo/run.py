"""What `elasticzo train` and `elasticzo eval` do: data, hyperparameters, run directory, checkpoints, summary."""

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from elasticzo import _core, hparams, models
from elasticzo.checkpoint import (CheckpointError, atomic_write, build_model, load_model_parameters, read_checkpoint,
                                  remove_stale_temps, restore_trainer, save_checkpoint)
from elasticzo.cli import RUN_DEFAULTS, SUBSET_SEED
from elasticzo.data import load_dataset, load_npz, rotated_subset
from elasticzo.data.augment import check_augment
from elasticzo.memory import DEFAULT_MEMORY_PLAN, choose_partition
from elasticzo.methods import method_name
from elasticzo.peak_rss import peak_rss_bytes
from elasticzo.rounding import rounding_policy
from elasticzo.trainer import PHASES, ElasticZO, evaluate, model_dataset, sign_statistics
from elasticzo.weights import from_torch

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
LOCK = ".lock"


def _configure_runtime(args):
    if args.threads is not None:
        _core.set_num_threads(args.threads)
    if args.isa is not None:
        _core.set_isa(args.isa)


# ElasticZO-INT8's flags -> trainer keyword arguments (int8 models only; the trainer's defaults apply otherwise,
# but gradient_bits, NITI's first mu, defaults to the model's tuned value).
INT8_ZO_FLAGS = ("zo_range", "zo_p_zero", "zo_update_bits", "log2_frac_bits", "gradient_bits", "rounding")


def _fill_run_defaults(args):
    for key, value in RUN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.clean_bp_pass is None:
        args.clean_bp_pass = False


def _rate_overrides(args, method):
    """Trainer config values the user set with --lr, --lr-bp, --eps and --clip.

    Full BP has no ZO part: there --lr means its only learning rate, and lr_zo keeps its default."""
    lr_key = "lr_bp" if method == "full-bp" and args.lr_bp is None else "lr_zo"
    return {key: getattr(args, flag) for flag, key in (("lr", lr_key), ("lr_bp", "lr_bp"), ("eps", "eps"),
                                                      ("clip", "grad_clip")) if getattr(args, flag) is not None}


def _tuned(args, num_param_layers):
    """(method, its tuned HParams). --zo-layers C overrides --method, so the method whose defaults apply is the one
    C names (C = 0 is Full BP)."""
    _fill_run_defaults(args)
    method = args.method if args.zo_layers is None else method_name(args.zo_layers, num_param_layers)
    return method, hparams.defaults(args.model, args.dataset, method, args.precision)


def _int8_init(args, num_param_layers):
    """The weight initialization of a new int8 run: --int8-init, else the tuned one (None: the layers' own); None
    for an FP32 run or one whose weights come from --init-from."""
    _fill_run_defaults(args)
    if args.precision == "fp32" or args.init_from is not None:
        if args.int8_init is not None:
            raise ValueError("--int8-init draws a new int8 model's weights: it does not go with "
                             + ("--precision fp32" if args.precision == "fp32" else "--init-from (the weights given)"))
        return None
    return args.int8_init or _tuned(args, num_param_layers)[1].int8_init or models.INT8_INITS[0]


def _trainer_config(args, num_param_layers):
    """Trainer keyword arguments: the tuned defaults for (model, dataset, method), overridden by the flags."""
    method, hp = _tuned(args, num_param_layers)
    cfg = dict(lr_zo=hp.lr_zo, lr_bp=hp.lr_bp, eps=hp.eps, grad_clip=hp.grad_clip, lr_decay=hp.lr_decay,
               lr_decay_every=hp.lr_decay_every, optimizer=args.optimizer, clean_bp_pass=args.clean_bp_pass,
               seed=args.seed, memory_plan=args.memory_plan or DEFAULT_MEMORY_PLAN, augment=args.augment or hp.augment)
    cfg.update(_rate_overrides(args, method))
    int8_flags = {k: getattr(args, k) for k in INT8_ZO_FLAGS if getattr(args, k) is not None}
    if args.precision == "fp32" and int8_flags:
        raise ValueError(f"--{next(iter(int8_flags)).replace('_', '-')} applies to --precision int8 or int8-intonly")
    if args.precision != "fp32":
        # The tuned p_zero phases, rounding and ZO step (r with b_zo: one setting, the update is about
        # zeta / 2^(bits(r) - b_zo)) were chosen for training from scratch; a fine-tuning run keeps the paper's, NITI's
        # first commit's and the library's step. A range tuned alone (PointNet's r 3) is the model's, for both.
        scratch = args.init_from is None
        p_zero = list(hp.zo_p_zero) if hp.zo_p_zero is not None and scratch else None
        rounding = rounding_policy(hp.rounding) if hp.rounding is not None and scratch else None
        step = scratch or hp.zo_update_bits is None
        tuned = {k: v for k, v in (("zo_range", hp.zo_range if step else None), ("zo_p_zero", p_zero),
                                   ("rounding", rounding), ("zo_update_bits", hp.zo_update_bits if scratch else None))
                 if v is not None}
        # a resumed run keeps what it saved, even where the tuned defaults changed since (None included)
        cfg.update({"gradient_bits": hp.gradient_bits, **tuned, **getattr(args, "saved_int8", {}), **int8_flags},
                   precision=args.precision)
    if args.zo_layers is not None:
        cfg["zo_layers"] = args.zo_layers
    else:
        cfg["method"] = args.method
    batch_size = args.batch_size if args.batch_size is not None else hp.batch_size
    return cfg, batch_size


def _resume_settings(args, state, path):
    """Takes the run's settings into `args` (see RESUME_POLICY in cli.py): a flag that names a different value of
    what defines the run is refused; --lr, --lr-bp, --eps and --clip are applied. Returns the applied changes as
    {config key: [old, new]}."""
    info, config = state["info"], state["config"]
    missing = [k for k in ("model", "dataset", "num_classes", "batch_size") if k not in info]
    if missing:
        raise CheckpointError(f"{path} was not written by `elasticzo train` (no {', '.join(missing)}); continue it "
                              "from Python with elasticzo.ElasticZO.load")
    saved = {"model": info["model"], "dataset": info["dataset"], "data": info.get("data"),
             "method": config["method"], "precision": config.get("precision", "fp32"),
             "zo_layers": config["zo_layers"], "seed": config["seed"], "optimizer": config["optimizer"],
             "clean_bp_pass": config["clean_bp_pass"], "batch_size": info["batch_size"],
             "train_samples": info.get("train_samples"), "test_samples": info.get("test_samples"),
             "subset_seed": info.get("subset_seed"), "angle": info.get("angle"), "init_from": info.get("init_from"),
             "augment": config.get("augment", "none"), **{k: config[k] for k in INT8_ZO_FLAGS if k in config}}
    if saved["precision"] != "fp32":  # a run saved before the rounding was a setting used NITI's first commit
        saved.setdefault("rounding", rounding_policy(None))
        # a run whose weights came from --init-from has no init; one saved before the choice drew Xavier normal
        if saved["init_from"] is None:
            saved["int8_init"] = info.get("int8_init", models.INT8_INITS[0])
    conflicts = [f"--{k.replace('_', '-')} {getattr(args, k)} ({_saved_setting(k, v)})" for k, v in saved.items()
                 if getattr(args, k) is not None and getattr(args, k) != v]
    if conflicts:
        raise ValueError(f"--resume continues the run in {path.parent} with its own settings, and these flags "
                         f"differ from them: {'; '.join(conflicts)}. Drop them, or start a new run with another "
                         "--out (elasticzo train --help says which flags a resumed run may change)")
    for key, value in saved.items():
        setattr(args, key, value)
    args.saved_int8 = {k: saved[k] for k in INT8_ZO_FLAGS if k in saved}
    return {k: [config[k], v] for k, v in _rate_overrides(args, config["method"]).items() if config[k] != v}


def _saved_setting(key, value):
    if key == "subset_seed" and value is None:
        return "the run was saved before subsets were drawn at random: it takes the first N samples"
    return f"the run has {value}"


@contextlib.contextmanager
def _locked_run_dir(run_dir):
    """Creates `run_dir` and holds an exclusive lock on RUN_DIR/.lock while the block runs, so that two runs never
    share a directory; the lock goes with the process, however it ends."""
    if run_dir is None:
        yield
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir} is a file, not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ValueError(f"--out {run_dir} cannot be used as a run directory: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise ValueError(f"--out {run_dir} is in use by another run (pid {holder}); wait for it to end or choose "
                             "another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _write_metrics(run_dir: Path, history):
    text = "".join(json.dumps(m) + "\n" for m in history)
    atomic_write(run_dir / METRICS, lambda tmp: tmp.write_text(text))


def _append_metrics(run_dir: Path, metrics):
    with open(run_dir / METRICS, "a") as f:
        f.write(json.dumps(metrics) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _sign_agreement(history):
    """INT8*: over the run's steps, the fraction whose integer sign agreed with the floating-point one, the ties
    and the agreement over the steps the integer sign decided (trainer.sign_statistics). Epochs recorded before ties
    were counted have no tie counts; the tie figures then cover the epochs that have them."""
    steps = sum(m.get("sign_steps", 0) for m in history)
    if not steps:
        return {}
    agreed = sum(round(m["sign_agreement"] * m["sign_steps"]) for m in history)
    counted = [m for m in history if "sign_tie_steps" in m]
    out = {"sign_agreement": agreed / steps, "sign_steps": steps}
    if counted:
        ties = sign_statistics(sum(round(m["sign_agreement"] * m["sign_steps"]) for m in counted),
                               sum(m["sign_steps"] for m in counted), sum(m["sign_tie_steps"] for m in counted),
                               sum(m["sign_undecided_steps"] for m in counted))
        out.update({k: ties[k] for k in ("sign_ties", "sign_agreement_decided", "sign_tie_steps",
                                         "sign_undecided_steps")})
    return out


def _summary(trainer, info, test_acc):
    h = trainer.history
    breakdown = {p: sum(m["time_breakdown"][p] for m in h) for p in PHASES}
    total = sum(breakdown.values()) or 1.0
    return {
        "model": info["model"], "dataset": info["dataset"], "angle": info.get("angle"), "method": trainer.method,
        "precision": trainer.precision,
        "zo_layers": trainer.zo_layers, "epochs": trainer.epoch,
        "test_accuracy": test_acc, "train_loss": h[-1]["train_loss"] if h else None,
        "seconds_per_epoch": sum(m["seconds"] for m in h) / len(h) if h else None,
        "peak_memory_bytes": max(m["peak_memory_bytes"] for m in h) if h else None,  # the tracker's buffers
        "peak_rss_bytes": peak_rss_bytes(),  # the whole process: Python, libraries, data and buffers
        "time_breakdown_seconds": breakdown,
        "time_breakdown_fraction": {p: v / total for p, v in breakdown.items()},
        **_sign_agreement(h),
        "threads": _core.num_threads(), "isa": _core.active_isa(),
    }


def _load_data(args, saved_digest=None):
    """(train, test) of a run: the arrays of --data FILE.npz (test None without x_test) or a bundled dataset. A
    --data file's SHA-256 goes into args.data_sha256; a resumed run's file must still have `saved_digest`."""
    if args.data is not None:
        args.data_sha256 = _same_data(args.data, saved_digest)
        train, test = load_npz(args.data)
        args.dataset = train.name
        return train, test
    args.dataset = args.dataset or RUN_DEFAULTS["dataset"]
    return load_dataset(args.dataset, args.data_dir, "train"), load_dataset(args.dataset, args.data_dir, "test")


def _same_data(path, saved_digest, remedy="restore that file, or start a new run with another --out"):
    """The SHA-256 of the file at `path`; ValueError if a run recorded another one: a resumed run continues on the
    arrays it started from (bit-identical resume), and a file rewritten in place would silently break that."""
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return None  # load_npz names the missing file
    if saved_digest is not None and digest != saved_digest:
        raise ValueError(f"{path} is not the file this run started from (its SHA-256 is {digest[:16]}..., the run "
                         f"recorded {saved_digest[:16]}...): {remedy}")
    return digest


def _subset(data, count, seed, flag):
    """`count` samples of `data` drawn at random by `seed` (Dataset.sample), all when count is None; seed None: the
    first `count`, as runs saved before subsets were drawn at random took them."""
    if count is None or data is None:
        return data
    if not 1 <= count <= len(data):
        raise ValueError(f"{flag} must be in [1, {len(data)}], got {count}")
    return data.subset(range(count)) if seed is None else data.sample(count, seed)


def _check_subset_seed(seed):
    if seed is not None and seed < 0:
        raise ValueError(f"--subset-seed must be >= 0, got {seed}")


def _rotated(data, angle):
    """`data` with every image rotated by `angle` degrees (unchanged when angle is None)."""
    if angle is None or data is None:
        return data
    if data.x.ndim not in (3, 4):
        raise ValueError(f"--angle rotates images; {data.name} holds samples of shape {data.sample_shape}")
    if data.x.ndim == 3:  # (N, H, W) arrays of a --data file: rotation needs the channel axis
        data = replace(data, x=data.x[:, None])
    return rotated_subset(data, angle)


def _partition_for_budget(args, model, train):
    """Sets --zo-layers (and the batch size it was measured with) to the partition that fits --memory-budget."""
    if args.batch_size is None:
        args.batch_size = hparams.defaults(args.model, args.dataset, "zo-feat-cls1", args.precision).batch_size
    choice = choose_partition(model, (args.batch_size, *train.sample_shape), args.memory_budget,
                              num_classes=train.num_classes, memory_plan=args.memory_plan or DEFAULT_MEMORY_PLAN,
                              optimizer=args.optimizer)
    print(f"elasticzo: {choice['reason']}", file=sys.stderr)
    args.zo_layers = choice["zo_layers"]


def train_command(args) -> int:
    if args.data is not None:
        if args.dataset is not None:
            raise ValueError("give --dataset (a bundled dataset) or --data (your own arrays), not both")
        args.data = str(Path(args.data).resolve())  # recorded in the run, so --resume works from any folder
    _check_subset_seed(args.subset_seed)
    if args.subset_seed is not None and not args.resume and args.train_samples is None and args.test_samples is None:
        raise ValueError("--subset-seed draws the subsets of --train-samples and --test-samples: give one of them")
    if args.init_from is not None:
        args.init_from = str(Path(args.init_from).resolve())
    elif args.init_drop_biases:
        raise ValueError("--init-drop-biases goes with --init-from (the file whose biases to drop)")
    _configure_runtime(args)
    if args.memory_budget is not None:
        if args.resume:
            raise ValueError("--memory-budget chooses the partition of a new run; --resume continues the saved one")
        if args.method is not None or args.zo_layers is not None:
            raise ValueError("--memory-budget chooses the partition: give it instead of --method / --zo-layers")
    run_dir = Path(args.out) if args.out else None
    if args.resume and run_dir is None:
        raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
    with _locked_run_dir(run_dir):
        return _train(args, run_dir)


def _train(args, run_dir) -> int:
    state = tensors = None
    if run_dir is not None:
        for name in (CHECKPOINT, METRICS, CONFIG):
            remove_stale_temps(run_dir / name)
    if args.resume:
        tensors, state = read_checkpoint(run_dir / CHECKPOINT)
        changes = _resume_settings(args, state, run_dir / CHECKPOINT)
    elif run_dir is not None and (run_dir / CHECKPOINT).exists():
        raise ValueError(f"{run_dir} already holds a run; continue it with --resume or choose another --out")

    train, test = _load_data(args, state["info"].get("data_sha256") if state is not None else None)
    args.model = args.model or models.model_for(train.sample_shape)
    _fill_run_defaults(args)
    if state is None and args.subset_seed is None:  # a resumed run keeps its own, None included
        args.subset_seed = SUBSET_SEED
    train = _rotated(_subset(train, args.train_samples, args.subset_seed, "--train-samples"), args.angle)
    test = _rotated(_subset(test, args.test_samples, args.subset_seed, "--test-samples"), args.angle)
    model = models.build(args.model, train.num_classes, seed=args.seed, input_shape=train.sample_shape,
                         precision=models.arithmetic(args.precision))
    if args.init_from is not None and state is None:  # a resumed run's weights come from its checkpoint
        from_torch(args.init_from, model, drop_biases=args.init_drop_biases)
    train = model_dataset(model, train, split="train")  # names any mismatch of the data and the model
    test = model_dataset(model, test) if test is not None else None
    info = {"model": args.model, "dataset": args.dataset, "data": args.data,
            **({"data_sha256": args.data_sha256} if args.data is not None else {}), "num_classes": train.num_classes,
            "train_samples": args.train_samples, "test_samples": args.test_samples,
            "subset_seed": args.subset_seed, "angle": args.angle,
            "init_from": args.init_from}
    if state is not None:
        # The saved config names C directly; the method name follows from it.
        cfg, batch_size = dict(state["config"]), state["info"]["batch_size"]
        cfg.pop("method")
        cfg.update({key: new for key, (_, new) in changes.items()})
        if args.memory_plan is not None:  # how buffers are laid out; results are the same bit for bit
            cfg["memory_plan"] = args.memory_plan
        info["resumes"] = list(state["info"].get("resumes", []))
    else:
        if args.memory_budget is not None:
            _partition_for_budget(args, model, train)
        cfg, batch_size = _trainer_config(args, model.num_param_layers)
    int8_init = _int8_init(args, model.num_param_layers)
    if int8_init is not None:  # a resumed run's weights come from its checkpoint
        info["int8_init"] = int8_init
        if state is None:
            models.init_int8_weights(model, int8_init)
    info["batch_size"] = batch_size
    check_augment(cfg.get("augment"), train.sample_shape)  # before the run directory records anything
    trainer = ElasticZO(model, **cfg)
    if state is not None:
        restore_trainer(trainer, tensors, state, run_dir / CHECKPOINT)
        if changes:
            info["resumes"].append({"steps_done": trainer.core.steps_done, "epoch": trainer.epoch,
                                    "batch_in_epoch": trainer.batch_in_epoch, "changed": changes})
            print("elasticzo: resuming with " + ", ".join(f"{k} {new} (was {old})" for k, (old, new) in changes.items())
                  + f" from step {trainer.core.steps_done}; recorded in {run_dir / CONFIG}", file=sys.stderr)
    if run_dir is not None:
        # metrics.jsonl restarts from what the checkpoint holds (nothing for a new run): lines of a failed earlier
        # run or of epochs the checkpoint does not hold are dropped, never appended to.
        _write_metrics(run_dir, trainer.history)
        atomic_write(run_dir / CONFIG,
                     lambda tmp: tmp.write_text(json.dumps({"info": info, "config": trainer.config}, indent=2)))

    # SIGINT/SIGTERM only set a flag; training stops after the step in flight, when the trainer's position and
    # weights agree, so the checkpoint written on the way out resumes exactly.
    stop = []

    def request_stop(signum, frame):
        stop.append(signum)

    def check_stop():
        if stop:
            raise KeyboardInterrupt

    def on_step(tr, loss):
        check_stop()
        if run_dir is not None and args.checkpoint_every > 0 and tr.core.steps_done % args.checkpoint_every == 0:
            save_checkpoint(run_dir / CHECKPOINT, tr, info)

    def on_epoch_end(tr, metrics):
        if not args.json:
            acc = metrics.get("test_accuracy")
            tested = f", test accuracy {100 * acc:.2f}%" if acc is not None else ""
            print(f"epoch {metrics['epoch']}: train loss {metrics['train_loss']:.4f}{tested}, "
                  f"{metrics['seconds']:.1f} s", file=sys.stderr)
        if run_dir is not None:
            _append_metrics(run_dir, metrics)
            save_checkpoint(run_dir / CHECKPOINT, tr, info)
        check_stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.epochs != 0:  # --epochs 0 only evaluates the starting weights (e.g. those of --init-from)
            trainer.fit(train, until_epoch=args.epochs, batch_size=batch_size, test=test,
                        progress=not args.no_progress, on_epoch_end=on_epoch_end, on_step=on_step)
    except KeyboardInterrupt:
        if run_dir is not None:
            save_checkpoint(run_dir / CHECKPOINT, trainer, info)
            print(f"elasticzo: interrupted at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}; "
                  f"checkpoint saved, continue with --resume --out {run_dir}", file=sys.stderr)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if trainer.history or test is None:
        test_acc = trainer.history[-1].get("test_accuracy") if trainer.history else None
    else:
        # at the training batch size, as every epoch's test: an INT8 model's outputs depend on the batch (NITI)
        test_acc = evaluate(model, test, batch_size=batch_size)["accuracy"]
    summary = _summary(trainer, info, test_acc)
    if args.json:
        print(json.dumps(summary))
    else:
        tested = f"test accuracy {100 * test_acc:.2f}%" if test_acc is not None else "no test split"
        print(f"done: {summary['epochs']} epochs, {tested}, peak resident memory "
              f"{summary['peak_rss_bytes'] / 2**20:.1f} MiB")
    return 0


def eval_command(args) -> int:
    _check_subset_seed(args.subset_seed)
    tensors, state = read_checkpoint(args.checkpoint)
    info = state["info"]
    data = args.data or (info.get("data") if args.dataset is None else None)
    if data is not None:
        if args.data is None:  # the run's own file: the one it trained on, or its test split means something else
            _same_data(data, info.get("data_sha256"), "restore that file, or name the one to evaluate on with --data")
        dataset, test = Path(data).name, load_npz(data)[1]
        if test is None:
            raise ValueError(f"{data} holds no x_test, y_test to evaluate on")
    else:
        dataset = args.dataset or info.get("dataset")
        if dataset is None:
            raise ValueError(f"{args.checkpoint} does not name its dataset (saved without dataset=...); pass "
                             "--dataset")
        test = load_dataset(dataset, args.data_dir, "test")
    if args.subset_seed is not None:
        seed = args.subset_seed
    elif "train_samples" in info and "subset_seed" not in info:
        seed = None  # a run of `train` saved before subsets were drawn at random: its first N, as it tested
    else:
        seed = info.get("subset_seed", SUBSET_SEED)
    count = args.test_samples if args.test_samples is not None else info.get("test_samples")
    test = _rotated(_subset(test, count, seed, "--test-samples"),
                    args.angle if args.angle is not None else info.get("angle"))
    if state["layers"]:
        model = build_model(state["layers"])
    elif "model" in info and "num_classes" in info:  # checkpoints of format 1
        model = models.build(info["model"], info["num_classes"])
    else:
        raise CheckpointError(f"{args.checkpoint} describes neither its layers nor its model")
    load_model_parameters(model, tensors, args.checkpoint)
    if model.precision == "int8":  # evaluate with the rounding the run trained with (older runs: the first commit)
        model.rounding = rounding_policy(state["config"].get("rounding"))
    test = model_dataset(model, test)
    classes = model.output_shape([1, *test.sample_shape])[-1]
    if classes != test.num_classes:
        raise ValueError(f"the checkpoint's model has {classes} outputs, {dataset} has {test.num_classes} classes")
    name = info.get("model", "model")
    result = evaluate(model, test, batch_size=args.batch_size)
    result.update(model=name, dataset=dataset, epochs=state["epoch"])
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{name} on {dataset} test: accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f}")
    return 0
