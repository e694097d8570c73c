"""NITI's rounding per tensor class as a run setting (elasticzo.rounding): each class's scheme changes exactly the
tensors it rounds, stochastic draws come from the step key (the layers' activations and errors, the weight and
loss gradients) and are the same for every thread count, ISA and memory plan, the setting is validated, kept by
checkpoints and `elasticzo eval`, and an older checkpoint resumes with NITI's first commit."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import elasticzo
from elasticzo import _core
from elasticzo.checkpoint import checksum
from elasticzo.data import load_dataset
from elasticzo.models import lenet5, mlp
from elasticzo.rounding import CLASSES, DEFAULT, PRESETS, SCHEMES, parse_spec, rounding_policy


@pytest.fixture(scope="module")
def batches():
    train = load_dataset("mnist", None, "train").subset(range(96))
    return train.x.astype(np.float32).reshape(-1, 784) / 255.0, train.y.astype(np.int32)


def _run(x, y, rounding, method="full-bp", steps=1, precision="int8"):
    """Weights after `steps` steps of an int8 MLP (784-128-64-10), the first step's loss and the trainer."""
    trainer = elasticzo.ElasticZO(mlp(784, 10, seed=3, precision="int8"), method=method, seed=7, rounding=rounding,
                                  precision=precision, log2_frac_bits=0)
    trainer.start_epoch(0)
    steps = [trainer.core.step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(steps)]
    trainer.last_losses = [(s["loss_plus"], s["loss_minus"]) for s in steps]
    return trainer.model.state_dict(), steps[0]["loss"], trainer


def test_the_default_is_nitis_first_commit():
    assert DEFAULT == {"activations": "pseudo_stochastic", "errors": "pseudo_stochastic",
                       "weight_grads": "pseudo_stochastic", "loss_grad": "stochastic"}
    assert rounding_policy(None) == rounding_policy("first-commit") == DEFAULT == lenet5(precision="int8").rounding
    assert PRESETS["final-version"] == dict(DEFAULT, activations="nearest", errors="nearest")


@pytest.mark.parametrize("cls", CLASSES)
def test_each_class_changes_exactly_the_tensors_it_rounds(cls, batches):
    x, y = batches
    base, base_loss, _ = _run(x, y, None)
    for scheme in SCHEMES:
        if scheme == DEFAULT[cls]:
            continue
        sd, loss, _ = _run(x, y, {cls: scheme})
        # Full BP, one step: the forward (its loss) reads only the activations' rounding; the last layer's update
        # reads the loss gradient and its input, the lower layers' also the errors propagated to them.
        assert (loss != base_loss) == (cls == "activations"), scheme
        changed = {name for name in base if not np.array_equal(sd[name], base[name])}
        want = {"fc1.weight", "fc2.weight"} if cls == "errors" else {"fc1.weight", "fc2.weight", "fc3.weight"}
        assert changed == want, scheme
        # Full ZO: no backprop, so only the activations' rounding can change anything (the passes' losses)
        zo_base, zo = (_run(x, y, r, method="full-zo", steps=3)[2] for r in (None, {cls: scheme}))
        same = all(np.array_equal(zo.model.state_dict()[n], v) for n, v in zo_base.model.state_dict().items())
        assert same or cls == "activations", scheme
        assert (zo_base.last_losses == zo.last_losses) == (cls != "activations"), scheme


def test_stochastic_activations_draw_from_the_module_stream_with_a_fixed_key_outside_training(batches):
    x, _ = batches
    model = mlp(784, 10, seed=3, hidden=(), precision="int8")  # one Linear: logits = requantized x W^T
    model.rounding = {"activations": "stochastic"}
    assert model.rounding == dict(DEFAULT, activations="stochastic")
    xq, ex = _core.int8_quantize_input(np.ascontiguousarray(x[:8]))
    sd = model.state_dict()
    acc = xq.astype(np.int32) @ sd["fc1.weight"].astype(np.int32).T
    v, s = _core.int8_requantize(acc, "stochastic", key=(0, 0), stream=0x41000000)
    want = v.astype(np.float64) * 2.0 ** (ex + int(sd["fc1.weight.exponent"]) + s)
    out = model.forward(x[:8])
    np.testing.assert_array_equal(out, want.astype(np.float32))
    np.testing.assert_array_equal(model.forward(x[:8]), out)  # an evaluation is a pure function of its input
    assert not np.array_equal(_core.int8_requantize(acc, "pseudo_stochastic")[0], v)  # the scheme mattered


@pytest.mark.parametrize("method", ["zo-feat-cls1", "full-bp"])
def test_stochastic_rounding_everywhere_is_the_same_for_every_thread_count_isa_and_memory_plan(method, batches):
    x, y = batches
    everywhere = {c: "stochastic" for c in CLASSES}
    isa, threads = _core.active_isa(), _core.num_threads()
    runs = {}
    try:
        for level in _core.available_isas():
            for n in (1, 3):
                for plan in ("static", "lifetime"):
                    _core.set_isa(level)
                    _core.set_num_threads(n)
                    trainer = elasticzo.ElasticZO(lenet5(seed=2, precision="int8"), method=method, seed=4,
                                                  rounding=everywhere, memory_plan=plan)
                    trainer.start_epoch(0)
                    images = x.reshape(-1, 1, 28, 28)
                    losses = [trainer.core.step(images[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32])["loss"]
                              for i in range(3)]
                    runs[(level, n, plan)] = (trainer.model.state_dict(), losses,
                                              trainer.model.forward(images[:32]))
    finally:
        _core.set_isa(isa)
        _core.set_num_threads(threads)
    first_sd, first_losses, first_out = next(iter(runs.values()))
    for key, (sd, losses, out) in runs.items():
        assert losses == first_losses, key
        np.testing.assert_array_equal(out, first_out, err_msg=str(key))
        for name, value in sd.items():
            assert np.array_equal(value, first_sd[name]), (key, name)


def test_bad_rounding_settings_are_refused():
    model = lenet5(seed=0, precision="int8")
    with pytest.raises(ValueError, match="unknown tensor class 'weights'.*activations, errors, weight_grads"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", rounding={"weights": "nearest"})
    with pytest.raises(ValueError, match="unknown rounding scheme 'floor' for errors"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", rounding={"errors": "floor"})
    with pytest.raises(ValueError, match="unknown rounding preset 'last-commit'"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", rounding="last-commit")
    with pytest.raises(TypeError, match="rounding must be None, a preset name or a mapping"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", rounding=3)
    with pytest.raises(ValueError, match="applies to int8 models only"):
        elasticzo.ElasticZO(lenet5(seed=0), method="zo-feat-cls1", rounding="final-version")
    with pytest.raises(ValueError, match="unknown rounding 'up'"):
        model.rounding = {"errors": "up"}
    with pytest.raises(ValueError, match="each item is class=scheme"):
        parse_spec("activations=nearest,errors")
    assert parse_spec("final-version") == PRESETS["final-version"]
    assert parse_spec("errors=stochastic, loss_grad=nearest") == dict(DEFAULT, errors="stochastic",
                                                                      loss_grad="nearest")


def _strip_rounding(path):
    """Rewrites a checkpoint as one saved before the rounding was a setting (no config.rounding)."""
    with safe_open(str(path), framework="numpy") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state = json.loads(metadata["state"])
    del state["config"]["rounding"]
    metadata = dict(metadata, state=json.dumps(state))
    del metadata["sha256"]
    metadata["sha256"] = checksum(tensors, metadata)
    save_file(tensors, str(path), metadata=metadata)


def test_checkpoints_keep_the_rounding_and_older_ones_resume_with_the_first_commit(tmp_path, batches):
    x, y = batches
    nearest = {c: "nearest" for c in CLASSES}
    for rounding, strip in ((nearest, False), (None, True)):
        make = lambda: elasticzo.ElasticZO(mlp(784, 10, seed=1, precision="int8"),  # noqa: E731
                                           method="zo-feat-cls1", seed=4, rounding=rounding)
        whole = make()
        whole.fit(x, y, epochs=2, batch_size=32, progress=False)
        half = make()
        half.fit(x, y, epochs=1, batch_size=32, progress=False)
        half.save(tmp_path / "run.safetensors")
        if strip:
            _strip_rounding(tmp_path / "run.safetensors")
        resumed = elasticzo.ElasticZO.load(tmp_path / "run.safetensors")
        assert resumed.config["rounding"] == rounding_policy(rounding) == resumed.model.rounding
        resumed.fit(x, y, until_epoch=2, batch_size=32, progress=False)
        for name, value in whole.model.state_dict().items():
            assert np.array_equal(resumed.model.state_dict()[name], value), (rounding, name)


def test_cli_takes_the_rounding_keeps_it_on_resume_and_evaluates_with_it(tmp_path):
    from test_cli import cli

    args = ["train", "--precision", "int8", "--method", "full-bp", "--train-samples", "128", "--test-samples", "128",
            "--batch-size", "64", "--no-progress"]
    run = tmp_path / "run"
    cli(*args, "--epochs", "1", "--rounding", "activations=stochastic,errors=nearest", "--out", str(run))
    config = json.loads((run / "config.json").read_text())
    assert json.dumps(dict(DEFAULT, activations="stochastic", errors="nearest")) in json.dumps(config)
    refused = cli(*args, "--epochs", "2", "--out", str(run), "--resume", "--rounding", "first-commit", check=False)
    assert refused.returncode != 0 and "--rounding" in refused.stderr and "(the run has" in refused.stderr
    cli(*args, "--epochs", "2", "--out", str(run), "--resume", "--rounding", "activations=stochastic,errors=nearest")
    evaluated = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--test-samples", "128",
                               "--batch-size", "64", "--json").stdout.splitlines()[-1])
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    # eval rounds as the run did (the loss, a float of every logit, tells the roundings apart)
    assert (evaluated["accuracy"], evaluated["loss"]) == (last["test_accuracy"], last["test_loss"])
    bad = cli(*args, "--rounding", "activations=floor", check=False)
    assert bad.returncode != 0 and "unknown rounding scheme 'floor'" in bad.stderr
    fp32 = cli("train", "--rounding", "final-version", "--train-samples", "64", "--no-progress", check=False)
    assert fp32.returncode != 0 and "--rounding applies to --precision int8" in fp32.stderr
