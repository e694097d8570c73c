"""Checkpoints from Python: checksum and tampered metadata refused clearly, save/load of any model, exact resume
after Ctrl-C during fit(), stale temporary files reclaimed, and a layer added after the trainer refused."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import elasticzo
from elasticzo import nn
from elasticzo.checkpoint import (FORMAT, CheckpointError, checksum, load_trainer, read_checkpoint,
                                  remove_stale_temps)
from elasticzo.models import lenet5


def small_trainer(optimizer="adam"):
    model = nn.Sequential([("flatten", nn.Flatten()), ("fc1", nn.Linear(784, 16)), ("relu", nn.ReLU()),
                           ("fc2", nn.Linear(16, 12)), ("relu2", nn.ReLU()), ("fc3", nn.Linear(12, 10))], seed=0)
    return elasticzo.ElasticZO(model, method="zo-feat-cls2", optimizer=optimizer, seed=3)


@pytest.fixture
def saved(tmp_path, mnist_train):
    """A checkpoint after a few steps of Adam (so every kind of tensor and state entry is present)."""
    tr = small_trainer()
    tr.fit(mnist_train.subset(np.arange(96)), epochs=1, batch_size=32, progress=False)
    path = tmp_path / "ckpt.safetensors"
    tr.save(path, dataset="mnist")
    return path


def rewrite(path, mutate_tensors=None, mutate_state=None, fix_checksum=True):
    """Writes the checkpoint back with its tensors and/or trainer state changed, as a hostile user could."""
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if mutate_tensors:
        mutate_tensors(tensors)
    if mutate_state:
        state = json.loads(metadata["state"])
        mutate_state(state)
        metadata["state"] = json.dumps(state)
    if fix_checksum:
        metadata["sha256"] = checksum(tensors, metadata)
    save_file(tensors, str(path), metadata=metadata)


def test_save_and_load_round_trip_any_model(saved, mnist_train):
    tr = load_trainer(saved)
    assert [tr.model[i][0] for i in range(len(tr.model))] == ["flatten", "fc1", "relu", "fc2", "relu2", "fc3"]
    assert (tr.config["optimizer"], tr.config["seed"], tr.core.steps_done) == ("adam", 3, 3)
    again = elasticzo.ElasticZO.load(saved)
    for k, v in tr.model.state_dict().items():
        assert np.array_equal(v, again.model.state_dict()[k])


def test_one_flipped_bit_in_a_weight_fails_the_checksum(saved):
    def flip(tensors):
        w = tensors["model.fc1.weight"].copy()
        w.view(np.uint32).ravel()[5] ^= 1 << 27  # an exponent bit: the value stays finite
        assert np.isfinite(w).all()
        tensors["model.fc1.weight"] = w

    rewrite(saved, mutate_tensors=flip, fix_checksum=False)
    with pytest.raises(CheckpointError, match="fails its checksum"):
        read_checkpoint(saved)


def test_changed_metadata_fails_the_checksum(saved):
    rewrite(saved, mutate_state=lambda s: s.update(epoch=7), fix_checksum=False)
    with pytest.raises(CheckpointError, match="fails its checksum"):
        read_checkpoint(saved)


def _delete(key):
    return lambda s: s.pop(key)


def _set(key, value):
    return lambda s: s.update({key: value})


def _set_config(key, value):
    return lambda s: s["config"].update({key: value})


# (what, state mutation, message) with the checksum recomputed: the contents themselves are checked
BAD_STATES = [
    ("missing epoch", _delete("epoch"), "has no 'epoch'"),
    ("missing config", _delete("config"), "has no 'config'"),
    ("missing layers", _delete("layers"), "has no 'layers'"),
    ("negative epoch", _set("epoch", -1), "epoch must be an integer in [0, "),
    ("negative steps", _set("steps_done", -5), "steps_done must be an integer in [0, "),
    ("huge steps", _set("steps_done", 2**64), "steps_done must be an integer in [0, 9223372036854775807]"),
    ("huge seed", _set_config("seed", 2**70), "config.seed must be an integer in [0, 18446744073709551615]"),
    ("float steps", _set("steps_done", 3.5), "steps_done has the wrong type float"),
    ("string steps", _set("steps_done", "3"), "steps_done has the wrong type str"),
    ("bool optimizer steps", _set("optimizer_steps", True), "optimizer_steps has the wrong type bool"),
    ("NaN loss sum", _set("epoch_loss_sum", "nan"), "epoch_loss_sum must be a finite number"),
    ("garbage loss sum", _set("epoch_loss_sum", "lots"), "epoch_loss_sum must be a finite number"),
    ("history not a list", _set("history", {"epoch": 1}), "history has the wrong type dict"),
    ("NaN learning rate", _set_config("lr_zo", float("nan")), "config.lr_zo must be a finite number"),
    ("negative eps", _set_config("eps", -1.0), "config.eps must be a finite number >= 0"),
    ("missing seed", lambda s: s["config"].pop("seed"), "config. has no 'seed'"),
    ("float zo_layers", _set_config("zo_layers", 2.0), "config.zo_layers must be an integer"),
    ("huge zo_layers", _set_config("zo_layers", 2**40), "config.zo_layers must be an integer in [0, 2147483647]"),
    ("unknown optimizer", _set_config("optimizer", "lion"), "config.optimizer must be 'sgd' or 'adam'"),
]


@pytest.mark.parametrize("what,mutate,message", BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_tampered_state_is_a_clear_error(saved, what, mutate, message):
    rewrite(saved, mutate_state=mutate)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_trainer(saved)


def _tensor(name, make):
    return lambda t: t.update({name: make(t[name])})


BAD_TENSORS = [
    ("NaN weight", _tensor("model.fc1.weight", lambda a: np.full_like(a, np.nan)), "holds non-finite values"),
    ("int32 weight", _tensor("model.fc1.weight", lambda a: a.astype(np.int32)), "is int32"),
    ("float64 weight", _tensor("model.fc1.bias", lambda a: a.astype(np.float64)), "is float64"),
    ("wrong shape", _tensor("model.fc3.weight", lambda a: a[:5]), r"fc3.weight is float32 \(5, 12\)"),
    ("missing weight", lambda t: t.pop("model.fc2.bias"), "holds parameters"),
    ("missing moment", lambda t: t.pop("optimizer.v.1"), "not pairs"),
    ("extra tensor", lambda t: t.update(extra=np.zeros(3, np.float32)), "unexpected tensor 'extra'"),
]


@pytest.mark.parametrize("what,mutate,message", BAD_TENSORS, ids=[c[0] for c in BAD_TENSORS])
def test_tampered_tensors_are_a_clear_error(saved, what, mutate, message):
    rewrite(saved, mutate_tensors=mutate)
    with pytest.raises(CheckpointError, match=message):
        load_trainer(saved)


def test_layers_are_parsed_never_executed(saved, tmp_path):
    marker = tmp_path / "pwned"
    rewrite(saved, mutate_state=lambda s: s["layers"].__setitem__(
        0, ["flatten", f"__import__('pathlib').Path({str(marker)!r}).touch()"]))
    with pytest.raises(CheckpointError, match="cannot be rebuilt"):
        load_trainer(saved)
    assert not marker.exists()


def test_other_safetensors_files_are_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="not an elasticzo checkpoint"):
        read_checkpoint(path)


def test_restore_into_a_differently_built_trainer_is_refused(saved):
    from elasticzo.checkpoint import restore_trainer
    tensors, state = read_checkpoint(saved)
    other = small_trainer(optimizer="sgd")
    with pytest.raises(CheckpointError, match="optimizer 'adam'"):
        restore_trainer(other, tensors, state, saved)


def test_stale_temporary_files_are_reclaimed(saved):
    dead = saved.with_name(f".{saved.name}.tmp-999999999")  # pid above pid_max: its writer is gone
    live = saved.with_name(f".{saved.name}.tmp-{os.getppid()}")  # a live writer's file stays
    dead.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    load_trainer(saved).save(saved)
    assert not dead.exists() and live.exists()
    remove_stale_temps(saved)
    assert live.exists()
    assert FORMAT.endswith("/2")


def test_saving_onto_a_directory_is_refused_before_anything_is_written(tmp_path):
    """Before: the temporary file went into the directory's parent and the rename then failed with a message about
    that temporary file."""
    target = tmp_path / "runs"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match=re.escape(f"{target} is a directory; give a file path such as")):
        small_trainer().save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"] and not any(target.iterdir())


def test_layer_added_after_the_trainer_is_refused(mnist_train):
    tr = small_trainer()
    tr.model.add("late", nn.ReLU())
    with pytest.raises(RuntimeError, match="a layer added since would not be trained"):
        tr.fit(mnist_train.subset(np.arange(32)), epochs=1, batch_size=32, progress=False)
    assert tr.core.steps_done == 0
    x, y = mnist_train.take(np.arange(8))
    with pytest.raises(RuntimeError, match="a layer added since would not be trained"):  # the C++ trainer, directly
        tr.core.step(x, y)
    assert tr.core.steps_done == 0


CTRL_C_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import numpy as np
    import elasticzo
    from elasticzo.data import load_dataset

    train = load_dataset("mnist", sys.argv[1], "train").subset(np.arange(640))
    def trainer():
        return elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method="zo-feat-cls1", optimizer="adam")

    # 20 epochs of 10 steps: enough steps left after the press that the signal lands mid-run even when the
    # pressing thread waits long for a CPU on a loaded machine.
    epochs = 20
    straight = trainer()
    straight.fit(train, epochs=epochs, batch_size=64, progress=False)

    if sys.argv[4] == "own-handler":  # as IPython or an application installs: it is held back the same way
        def own_handler(signum, frame):
            raise KeyboardInterrupt("from the application's handler")
        signal.signal(signal.SIGINT, own_handler)
    else:  # Python's own handler, even where the test runner inherited SIGINT ignored (started with `cmd &`)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    interrupted = trainer()
    def press_ctrl_c():  # lands while a step runs in C++ (nearly all of the time is spent there)
        while interrupted.core.steps_done < int(sys.argv[3]):
            time.sleep(0.0005)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        interrupted.fit(train, epochs=epochs, batch_size=64, progress=False)
        print("not interrupted")
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    print("stopped at", interrupted.core.steps_done, interrupted.epoch, interrupted.batch_in_epoch, flush=True)
    interrupted.save(sys.argv[2])
    resumed = elasticzo.ElasticZO.load(sys.argv[2])
    resumed.fit(train, until_epoch=epochs, batch_size=64, progress=False)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    same_loss = resumed.history[-1]["train_loss"] == straight.history[-1]["train_loss"]
    print("differ", differ, "same_loss", same_loss, "steps", resumed.core.steps_done)
    sys.exit(0 if not differ and same_loss and resumed.core.steps_done == 10 * epochs else 1)
""")


@pytest.mark.training
@pytest.mark.parametrize("after_steps,handler", [(3, "python"), (14, "python"), (6, "own-handler")])
def test_ctrl_c_during_fit_then_save_and_load_resumes_exactly(tmp_path, mnist_dir, after_steps, handler):
    proc = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT, str(mnist_dir), str(tmp_path / "c.safetensors"),
                           str(after_steps), handler], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stopped = proc.stdout.split("stopped at")[1].split()
    assert int(stopped[0]) >= after_steps and int(stopped[0]) == 10 * int(stopped[1]) + int(stopped[2])
