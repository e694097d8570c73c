"""The threading contract (README, "Threads"): every method of a model, of its layers and of its trainer holds the
model's lock, which a training step holds from start to end. So a layer used from one thread while another trains
its model takes turns with the steps (issue 14: `fc3.backward_weight` then freed the step's gradient buffers), and
`state_dict()` or `forward()` from a second thread never sees mid-step weights (theta +- eps z), while training
gives the same bits as without the second thread. These tests also run under AddressSanitizer in CI."""

import faulthandler
import threading
import time

import numpy as np
import pytest

from elasticzo import _core, nn
from elasticzo.models import lenet5

STEPS = 25


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n).astype(np.int32)


def _trainer(zo_layers, optimizer="sgd"):
    model = lenet5(seed=3)
    return model, _core.ElasticZO(model, zo_layers, eps=1e-2, lr_zo=1e-3, lr_bp=1e-2, grad_clip=0.0,
                                  clean_bp_pass=False, optimizer=optimizer, seed=5)


def _snapshot(model):
    return b"".join(v.tobytes() for v in model.state_dict().values())


def _train_beside(trainer, x, y, other, steps=STEPS):
    """Runs `steps` training steps in a thread while `other()` runs in a loop here; returns other's results."""
    errors, done, results = [], threading.Event(), []

    def train():
        try:
            for _ in range(steps):
                trainer.step(x, y)
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=train)
    thread.start()
    while not done.is_set():
        results.append(other())
    thread.join()
    if errors:
        raise errors[0]
    return results


def test_layer_used_while_its_model_trains():
    """fc3 is trained by backprop: its gradient slots are in use by every step of the other thread."""
    x, y = _batch(16, 0)
    model, reference = _trainer(zo_layers=2)
    for _ in range(STEPS):
        reference.step(x, y)
    expected = _snapshot(model)

    model, trainer = _trainer(zo_layers=2)
    fc3 = model[-1][1]
    rng = np.random.default_rng(1)
    x3, dy3 = rng.standard_normal((7, 84)).astype(np.float32), rng.standard_normal((7, 10)).astype(np.float32)

    def use_fc3():
        grads = fc3.backward_weight(x3, dy3)  # dW = dy^T x does not depend on the weights being trained
        np.testing.assert_allclose(grads["weight"], dy3.T @ x3, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grads["bias"], dy3.sum(0), rtol=1e-5, atol=1e-5)
        assert fc3.forward(x3).shape == (7, 10)
        return fc3.backward_data(x3, fc3.forward(x3), dy3).shape

    calls = _train_beside(trainer, x, y, use_fc3)
    assert len(calls) > 0 and trainer.steps_done == STEPS
    assert _snapshot(model) == expected, "calls on a layer changed its model's training"


def test_reads_during_training_never_see_mid_step_weights():
    """Every state_dict(), parameter() and forward() taken during training matches the model after some step."""
    x, y = _batch(16, 0)
    probe = _batch(4, 9)[0]
    model, trainer = _trainer(zo_layers=5)  # Full ZO: every weight is perturbed by +-eps z inside a step
    states, outputs = {_snapshot(model)}, {model.forward(probe).tobytes()}
    for _ in range(STEPS):
        trainer.step(x, y)
        states.add(_snapshot(model))
        outputs.add(model.forward(probe).tobytes())

    model, trainer = _trainer(zo_layers=5)
    conv1 = model[0][1]
    reads = _train_beside(trainer, x, y, lambda: (_snapshot(model), model.forward(probe).tobytes(),
                                                  conv1.parameters()["weight"].tobytes(),
                                                  model.parameter("conv1.weight").tobytes()))
    assert len(reads) > 0
    conv1_states = {s[:6 * 25 * 4] for s in states}  # conv1.weight comes first in the state
    for snapshot, output, weight, parameter in reads:
        assert snapshot in states, "state_dict() returned weights that no step boundary had"
        assert output in outputs, "forward() ran on mid-step weights"
        assert weight in conv1_states and parameter in conv1_states
    assert _snapshot(model) in states


def test_trainer_state_read_and_set_while_another_thread_trains():
    x, y = _batch(16, 0)
    model, trainer = _trainer(zo_layers=2, optimizer="adam")

    def read():
        state = trainer.optimizer_state()
        assert 0 <= state["steps"] <= STEPS and len(state["m"]) == len(state["v"]) == 6
        trainer.set_learning_rates(1e-3, 1e-2)
        return trainer.steps_done, trainer.times()

    reads = _train_beside(trainer, x, y, read)
    assert [r[0] for r in reads] == sorted(r[0] for r in reads)  # step counts only grow
    assert trainer.optimizer_state()["steps"] == STEPS


def test_two_trainers_on_one_model_take_turns():
    x, y = _batch(16, 0)
    model, first = _trainer(zo_layers=2)
    second = _core.ElasticZO(model, 5, eps=1e-2, lr_zo=1e-3, lr_bp=1e-2, grad_clip=0.0, clean_bp_pass=False,
                             optimizer="sgd", seed=7)
    _train_beside(first, x, y, lambda: second.step(x, y))
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_model_changed_while_another_thread_trains():
    """Adding a module reallocates the model's buffers: it waits for the running step, and the next step refuses
    the model whose output no longer fits the labels instead of using freed buffers."""
    x, y = _batch(16, 0)
    model, trainer = _trainer(zo_layers=2)
    errors, started = [], threading.Event()

    def train():
        try:
            for _ in range(STEPS):
                started.set()
                trainer.step(x, y)
        except BaseException as e:  # checked in the main thread
            errors.append(e)

    thread = threading.Thread(target=train)
    thread.start()
    started.wait()
    model.add("extra", nn.Flatten())
    model.add("more", nn.Linear(10, 3))
    thread.join()
    if errors:  # the labels (0..9) no longer fit the 3 outputs, or the trainer refuses the changed model
        assert isinstance(errors[0], (ValueError, RuntimeError)), repr(errors[0])
    else:  # every step ran before the modules were added
        assert trainer.steps_done == STEPS
    assert model.forward(x).shape == (16, 3)


def test_a_layer_with_parameters_belongs_to_one_model():
    fc = nn.Linear(4, 2)
    nn.Sequential([("fc", fc)])
    with pytest.raises(ValueError, match=r"Linear\(4, 2\) \(module 'again'\) already belongs to a model"):
        nn.Sequential([("again", fc)])
    with pytest.raises(ValueError, match="already belongs to a model"):
        nn.Sequential([("a", nn.Linear(4, 4)), ("b", nn.ReLU())]).add("c", fc)
    shared = nn.ReLU()  # parameter-free layers hold no state: any number of models may share one
    nn.Sequential([("r1", shared), ("fc", nn.Linear(4, 2)), ("r2", shared)])
    nn.Sequential([("r", shared)])


def test_layer_joins_a_model_while_another_thread_uses_it():
    """Adding waits for the layer's call in progress (it holds the layer's own lock and then wants the GIL): the
    add waits without the GIL, so neither thread blocks the other for good."""
    fc = nn.Linear(64, 32)
    x = np.ones((256, 64), dtype=np.float32)
    stop, outputs = threading.Event(), []

    def use():
        while not stop.is_set():
            outputs.append(fc.forward(x).shape)

    thread = threading.Thread(target=use)
    faulthandler.dump_traceback_later(120, exit=True)  # a deadlock fails the run instead of stalling it
    try:
        thread.start()
        while not outputs:
            time.sleep(0.001)
        model = nn.Sequential([("fc", fc), ("relu", nn.ReLU())], seed=0)
        assert model.forward(x).shape == (256, 32)
        stop.set()
        thread.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert set(outputs) == {(256, 32)}
