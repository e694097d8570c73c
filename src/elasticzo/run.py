"""What `elasticzo train` and `elasticzo eval` do: data, hyperparameters, run directory, checkpoints, summary."""

import json
import os
import signal
import sys
from pathlib import Path

from elasticzo import _core, hparams, models
from elasticzo.checkpoint import (atomic_write, load_model_parameters, read_checkpoint, restore_trainer,
                                  save_checkpoint)
from elasticzo.data import load_dataset
from elasticzo.methods import method_name
from elasticzo.trainer import PHASES, ElasticZO, evaluate

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


def _configure_runtime(args):
    if args.threads is not None:
        _core.set_num_threads(args.threads)
    if args.isa is not None:
        _core.set_isa(args.isa)


def _trainer_config(args, num_param_layers):
    """Trainer keyword arguments: the tuned defaults for (model, dataset, method), overridden by the flags.

    --zo-layers C overrides --method, so the method whose defaults apply is the one C names (C = 0 is Full BP).
    """
    method = args.method if args.zo_layers is None else method_name(args.zo_layers, num_param_layers)
    hp = hparams.defaults(args.model, args.dataset, method)
    cfg = dict(lr_zo=hp.lr_zo, lr_bp=hp.lr_bp, eps=hp.eps, grad_clip=hp.grad_clip, lr_decay=hp.lr_decay,
               lr_decay_every=hp.lr_decay_every, optimizer=args.optimizer, clean_bp_pass=args.clean_bp_pass,
               seed=args.seed)
    # Full BP has no ZO part: there --lr means its only learning rate, and lr_zo keeps its default.
    lr_key = "lr_bp" if method == "full-bp" and args.lr_bp is None else "lr_zo"
    for flag, key in (("lr", lr_key), ("lr_bp", "lr_bp"), ("eps", "eps"), ("clip", "grad_clip")):
        if getattr(args, flag) is not None:
            cfg[key] = getattr(args, flag)
    if args.zo_layers is not None:
        cfg["zo_layers"] = args.zo_layers
    else:
        cfg["method"] = args.method
    batch_size = args.batch_size if args.batch_size is not None else hp.batch_size
    return cfg, batch_size


def _write_metrics(run_dir: Path, history):
    text = "".join(json.dumps(m) + "\n" for m in history)
    atomic_write(run_dir / METRICS, lambda tmp: tmp.write_text(text))


def _append_metrics(run_dir: Path, metrics):
    with open(run_dir / METRICS, "a") as f:
        f.write(json.dumps(metrics) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _summary(trainer, info, test_acc):
    h = trainer.history
    breakdown = {p: sum(m["time_breakdown"][p] for m in h) for p in PHASES}
    total = sum(breakdown.values()) or 1.0
    return {
        "model": info["model"], "dataset": info["dataset"], "method": trainer.method,
        "zo_layers": trainer.zo_layers, "epochs": trainer.epoch,
        "test_accuracy": test_acc, "train_loss": h[-1]["train_loss"] if h else None,
        "seconds_per_epoch": sum(m["seconds"] for m in h) / len(h) if h else None,
        "peak_memory_bytes": max(m["peak_memory_bytes"] for m in h) if h else None,
        "time_breakdown_seconds": breakdown,
        "time_breakdown_fraction": {p: v / total for p, v in breakdown.items()},
        "threads": _core.num_threads(), "isa": _core.active_isa(),
    }


def train_command(args) -> int:
    _configure_runtime(args)
    run_dir = Path(args.out) if args.out else None
    state = tensors = None
    if args.resume:
        if run_dir is None:
            raise ValueError("--resume needs --out RUN_DIR (the run to continue)")
        tensors, state = read_checkpoint(run_dir / CHECKPOINT)
        saved = state["info"]
        for key in ("model", "dataset"):
            if getattr(args, key) != saved[key]:
                print(f"elasticzo: resuming the run's --{key} {saved[key]} (not {getattr(args, key)})",
                      file=sys.stderr)
                setattr(args, key, saved[key])
    elif run_dir is not None and (run_dir / CHECKPOINT).exists():
        raise ValueError(f"{run_dir} already holds a run; continue it with --resume or choose another --out")

    train = load_dataset(args.dataset, args.data_dir, "train")
    test = load_dataset(args.dataset, args.data_dir, "test")
    if state is not None:
        args.train_samples = state["info"].get("train_samples")
    if args.train_samples is not None:
        if not 1 <= args.train_samples <= len(train):
            raise ValueError(f"--train-samples must be in [1, {len(train)}], got {args.train_samples}")
        train = train.subset(range(args.train_samples))
    model = models.build(args.model, train.num_classes, seed=state["config"]["seed"] if state else args.seed)
    if state is not None:
        # The saved config names C directly; the method name follows from it.
        cfg, batch_size = dict(state["config"]), state["info"]["batch_size"]
        cfg.pop("method")
    else:
        cfg, batch_size = _trainer_config(args, model.num_param_layers)
    trainer = ElasticZO(model, **cfg)
    info = {"model": args.model, "dataset": args.dataset, "num_classes": train.num_classes, "batch_size": batch_size,
            "train_samples": args.train_samples}
    if state is not None:
        restore_trainer(trainer, tensors, state, run_dir / CHECKPOINT)
        _write_metrics(run_dir, trainer.history)  # drops lines of epochs the checkpoint does not hold
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.json",
                     lambda tmp: tmp.write_text(json.dumps({"info": info, "config": trainer.config}, indent=2)))

    # SIGINT/SIGTERM only set a flag; training stops after the step in flight, when the trainer's position and
    # weights agree, so the checkpoint written on the way out resumes exactly.
    stop = []

    def request_stop(signum, frame):
        stop.append(signum)

    def check_stop():
        if stop:
            raise KeyboardInterrupt

    def on_step(tr):
        check_stop()
        if run_dir is not None and args.checkpoint_every > 0 and tr.core.steps_done % args.checkpoint_every == 0:
            save_checkpoint(run_dir / CHECKPOINT, tr, info)

    def on_epoch_end(tr, metrics):
        if not args.json:
            acc = metrics.get("test_accuracy")
            print(f"epoch {metrics['epoch']}: train loss {metrics['train_loss']:.4f}, test accuracy "
                  f"{100 * acc:.2f}%, {metrics['seconds']:.1f} s", file=sys.stderr)
        if run_dir is not None:
            _append_metrics(run_dir, metrics)
            save_checkpoint(run_dir / CHECKPOINT, tr, info)
        check_stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.fit(train, args.epochs, batch_size, test=test, progress=not args.no_progress,
                    on_epoch_end=on_epoch_end, on_step=on_step)
    except KeyboardInterrupt:
        if run_dir is not None:
            save_checkpoint(run_dir / CHECKPOINT, trainer, info)
            print(f"elasticzo: interrupted at epoch {trainer.epoch + 1}, batch {trainer.batch_in_epoch}; "
                  f"checkpoint saved, continue with --resume --out {run_dir}", file=sys.stderr)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    test_acc = trainer.history[-1].get("test_accuracy") if trainer.history else evaluate(model, test)["accuracy"]
    summary = _summary(trainer, info, test_acc)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"done: {summary['epochs']} epochs, test accuracy {100 * test_acc:.2f}%")
    return 0


def eval_command(args) -> int:
    tensors, state = read_checkpoint(args.checkpoint)
    info = state["info"]
    dataset = args.dataset or info["dataset"]
    test = load_dataset(dataset, args.data_dir, "test")
    model = models.build(info["model"], info["num_classes"])
    load_model_parameters(model, tensors, args.checkpoint)
    result = evaluate(model, test, args.batch_size)
    result.update(model=info["model"], dataset=dataset, epochs=state["epoch"])
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{info['model']} on {dataset} test: accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f}")
    return 0
