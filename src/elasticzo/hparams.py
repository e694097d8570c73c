"""Default hyperparameters per (model, dataset, method), chosen by the sweep in benchmarks/sweep_hparams.py.

The paper lost its learning rates, eps, clip and batch size (SPEC §3). The LeNet-5 values come from our sweep on
MNIST (validation accuracy on 5,000 held-out training images, batch 64; results and reasons in
benchmarks/results/sweep_hparams.md): the ZO rates are the best that stayed stable over 10-20 epochs, not the
best after half an epoch, and the tight clip c = 1 is what keeps ZO-trained weights from running away (Full ZO
with c = 100 blew up after 6.5 epochs). The 100-epoch runs of benchmarks/paper_table1.py then halved both rates
of the ZO-Feat methods (smoother, and better or equal on both datasets after 100 epochs) and loosened Cls1's clip
to 3 (+1.2 points on Fashion-MNIST); see "100 epochs" in sweep_hparams.md. The paper tuned the learning rate per
model and dataset, and so do we where Fashion-MNIST needed it: Full ZO there takes lr_zo 1e-3 with eps 1e-2 (the
larger eps smooths the loss enough for the doubled rate to stay stable) and Full BP lr 0.05 (0.2 fits the training
set within 60 epochs and ends 1.2 points lower). PointNet (He-initialized, see models.pointnet): the best validation
accuracy of `sweep_hparams.py --model pointnet` (1,000 held-out shapes, 111 steps of batch 32 per trial, axis by
axis: benchmarks/results/sweep_pointnet.md); a PointNet step costs about 100 LeNet-5 steps, so the trials are short
and favour larger rates than a long run may stand (Full ZO at lr_zo 1e-2 blew up within 2 epochs in a trial on
32-point shapes, even clipped to 1; the sweep's 3e-3 raised Full ZO's training loss from 3.69 to 4.11 in the second
epoch of the Table 1 run, so Full ZO takes the next smaller rate, 1e-3); 3-epoch (and for ZO-Feat-Cls2 15-epoch)
validation trials of the clip with lr_zo, of eps and of Cls2's lr_bp found nothing better by a rule fixed before the
results (sweep_pointnet_s9.md), so the ZO values stay. The ZO-Feat methods take batch 16 in FP32 (twice the ZO steps
per epoch for about the same time): 10-epoch validation trials of batch 32, 16 and 8 at each method's defaults, by a
rule fixed before the results (sweep_pointnet_s10.md), gave Cls2 56.25% against 52.75% at 32 and Cls1 64.00% against
57.30% (batch 8 unstable for both); Full ZO keeps 32 (16 and 8 unstable at its rate, and worse at the rate scaled
by batch / 32); INT8 keeps the batch 32 its settings were tuned at. Session 11's trials under the same rule found
nothing better for Cls2 (lr_bp 0.015 at batch 16, batch 8 at 0.03 and 0.015) and showed training augmentation
costing Cls2 21 points and Full ZO 5, so augment stays "none". Learning rates decay by 0.8 every 10 epochs.
INT8 PointNet starts NITI's mu schedule at 3 instead of the paper's 5 (LeNet-5's): on 4,096 shapes of 16 points,
Full BP reached 20.8% / 21.0% test accuracy after 3 epochs with mu 3 (two seeds), 5.5% / 10.4% with mu 5, and stayed
at chance with mu 6 (benchmarks/results/pointnet_int8.md). INT8's ZO perturbation range r: LeNet-5 takes the
library's default 16 (benchmarks/sweep_int8.py: validation 95.62% against 93.18% with r = 3 over the paper's whole
schedule, compressed into 10 epochs); PointNet keeps r = 3, with which its INT8 settings and tests were tuned (r = 16
was not tried there, and PointNet's INT8 Full ZO and Cls1 tests failed with it). INT8 keeps the paper's p_zero
schedule (0.33 / 0.5 / 0.9) everywhere: for Full ZO on MNIST, p_zero 0.5 / 0.9 / 0.9 won the sweep's 10-epoch
compressed trials (75.72% against 69.88% validation), but over the real 100 epochs it lost on validation
(`sweep_int8.py --methods full-zo --p-zero 0.33/0.5/0.9,0.5/0.9/0.9 --epochs 100 --compress 1`: mean of the last
five epochs 78.70% against 80.57%; benchmarks/results/sweep_int8_s5.md), so the compressed schedule does not predict
it. HParams.zo_p_zero lets a preset take per-phase values once a full-length validation supports them.
INT8 Full BP (NITI) on Fashion-MNIST starts its mu schedule at 4 (4, 3 from epoch 20, 2 from epoch 50) instead of the
paper's 5: each step down of mu lowered the training loss at once (0.41 -> 0.28 at epoch 20, 0.23 -> 0.15 at 50 in
the 100-epoch Table 1 run), and over 100 epochs on 5,000 held-out training images it gave 90.28% validation after
the last epoch against 89.56% (mean of the last five 90.52% against 90.11%; final train loss 0.039 against 0.095;
`sweep_int8.py --dataset fashion-mnist --methods full-bp --gradient-bits schedule,4 --epochs 100 --compress 1`,
benchmarks/results/sweep_int8_s6.md). MNIST keeps the paper's 5 (it already meets the paper there). The test cell
with it ended at 89.79% after 100 epochs (89.86% with 5/4/3; table1_int8_fashionmnist_fullbp_s6.md). It now trains as
NITI's final version as a whole: uniform init and the final version's rounding (activations and errors to nearest; the
first commit rounds them pseudo-stochastically), still mu from 4. Over 100 epochs on validation (seed 0, same split,
rule fixed before the result: better last epoch AND mean of the last five): 91.22% after the last epoch against
90.28% (last five 91.45% against 90.52%; `sweep_int8.py --dataset fashion-mnist --methods full-bp --gradient-bits 4
--int8-init xavier_uniform --rounding final-version --epochs 100 --compress 1`, sweep_int8_s8_fullbp.md); the uniform
init alone, tried first, missed the rule (90.44%, last five 90.48%). Fine-tuning (--init-from) keeps the first
commit's rounding, as it keeps the tuned p_zero and b_zo.
INT8 Full ZO of LeNet-5 on MNIST draws NITI's uniform weights (its final version; models.INT8_INITS) instead of the
layers' Xavier normal: the ZO weights random-walk by +-1 steps toward the walk's steady state, the uniform law on
[-127, 127], and from the normal init the network drifts with them (README, "Why Full ZO stalls"). Over 100 epochs on
validation: 86.62% after the last epoch against 81.06% (mean of the last five 86.49% against 80.57%; final train loss
0.48 against 0.71; `sweep_int8.py --methods full-zo --int8-init xavier_uniform --epochs 100 --compress 1`,
sweep_int8_s6.md, against sweep_int8_s5.md's paper-schedule run). The same pair of 100-epoch validation runs
(`sweep_int8.py --methods M [--dataset ...] --int8-init default,xavier_uniform --epochs 100 --compress 1`, seed 0,
sweep_int8_s7.md; rule fixed before the results: uniform better on the last epoch AND on the mean of the last five)
made it the default for ZO-Feat-Cls2 on MNIST: 93.06% after the last epoch against 90.50% (last five 93.38% against
90.17%; final train loss 0.23 against 0.33), and on Fashion-MNIST: 81.38% against 78.10% (last five 81.24% against
77.45%; loss 0.53 against 0.63), and for Full ZO on Fashion-MNIST: 73.66% against 69.72% (last five 73.79% against
69.63%), and for ZO-Feat-Cls1 on MNIST: 97.10% against 96.08% (last five 96.64% against 95.95%; loss 0.080 against
0.113). Fashion-MNIST ZO-Feat-Cls1 has no such pair (its cells meet the paper with the layers' init) and keeps it;
FP32 runs and fine-tuning (--init-from) ignore the init.
INT8 Full ZO and ZO-Feat-Cls2 on MNIST step with b_zo 2 at r 64, validated in two moves. First b_zo 2 at r 32 (the
ZO update g * zeta rounded to 2 bits from a probe twice as wide: about the same step as b_zo 1 at r 16, on a finer
grid; fine-tuning found it helped every ZO method, README "Fine-tuning"), for Full ZO over 100 epochs on
validation, with the uniform init, 88.34% after the last epoch against 86.62% (mean of the last five 88.67% against
86.49%; final train loss 0.42 against 0.48; `sweep_int8.py --methods full-zo
--int8-init xavier_uniform --update-bits 2 --ranges 32 --epochs 100 --compress 1`, seed 0, sweep_int8_s8.md, against
sweep_int8_s6.md's run, whose first epoch today's code reproduces bit for bit; rule fixed before the result: better
on the last epoch AND on the mean of the last five); p_zero 0.9 from epoch 20 on top of it lost (87.80%, last five
87.78%). The same pair for ZO-Feat-Cls2 on MNIST (`--methods zo-feat-cls2`, against sweep_int8_s7.md's run): 93.84%
against 93.06% (last five 93.53% against 93.38%; final train loss 0.25 against 0.23); then r 64 with b_zo 2 (the same
expected step from a probe twice as wide, fine-tuning's best ZO-Feat setting) against it: 94.74% against 93.84%
(last five 94.42% against 93.53%; loss 0.23 against 0.25), so Cls2 takes r 64, and so does Full ZO: 89.92% against
88.34% with r 32 (last five 89.64% against 88.67%; loss 0.42 against 0.42). Like the p_zero phases this step (r with
b_zo) is for training from scratch: a fine-tuning run (--init-from) keeps the library's r 16 with b_zo 1
(paper_table2.py sets its own r and b_zo); PointNet's r 3, tuned alone, applies to both.
"""

from dataclasses import asdict, dataclass, replace

from elasticzo import models
from elasticzo.schedule import StepDecay


@dataclass(frozen=True)
class HParams:
    lr_zo: float
    lr_bp: float
    eps: float
    grad_clip: float
    batch_size: int = 64
    int8_batch_size: int | None = None  # INT8's batch size where FP32's was tuned apart from it (None: batch_size)
    lr_decay: float = StepDecay.factor
    lr_decay_every: int = StepDecay.every
    augment: str = "none"  # training augmentation (elasticzo.data.augment)
    gradient_bits: int | None = None  # INT8: the first mu of NITI's schedule (None: the paper's 5, 4, 3)
    zo_range: int | None = None  # INT8: the ZO perturbation's range r (None: the library's, LeNet-5's tuned 16)
    zo_p_zero: tuple | None = None  # INT8: p_zero for the schedule's three phases (None: the paper's 0.33/0.5/0.9)
    zo_update_bits: int | None = None  # INT8: the ZO update's bit-width b_zo (None: the library's, the paper's 1)
    int8_init: str | None = None  # INT8: NITI's weight init, models.INT8_INITS (None: Xavier normal, its first commit)
    rounding: str | None = None  # INT8: NITI's rounding preset, elasticzo.rounding.PRESETS (None: its first commit)

    def as_dict(self) -> dict:
        return asdict(self)


# (model, dataset, method) -> HParams; "*" matches any dataset.
_TABLE = {
    ("lenet5", "*", "full-zo"): HParams(lr_zo=5e-4, lr_bp=0.0, eps=1e-3, grad_clip=1.0),
    ("lenet5", "*", "zo-feat-cls2"): HParams(lr_zo=5e-4, lr_bp=0.05, eps=1e-2, grad_clip=1.0),
    ("lenet5", "*", "zo-feat-cls1"): HParams(lr_zo=5e-4, lr_bp=0.05, eps=1e-3, grad_clip=3.0),
    ("lenet5", "*", "full-bp"): HParams(lr_zo=0.0, lr_bp=0.2, eps=1e-3, grad_clip=0.0),
    ("lenet5", "fashion-mnist", "full-zo"): HParams(lr_zo=1e-3, lr_bp=0.0, eps=1e-2, grad_clip=1.0),
    ("lenet5", "fashion-mnist", "full-bp"): HParams(lr_zo=0.0, lr_bp=0.05, eps=1e-3, grad_clip=0.0, gradient_bits=4,
                                                    int8_init="xavier_uniform", rounding="final-version"),
    # Unswept: LeNet-5's values, a start for an MLP on the user's own flat features (elasticzo train --data).
    ("mlp", "*", "full-zo"): HParams(lr_zo=5e-4, lr_bp=0.0, eps=1e-3, grad_clip=1.0),
    ("mlp", "*", "zo-feat-cls2"): HParams(lr_zo=5e-4, lr_bp=0.05, eps=1e-2, grad_clip=1.0),
    ("mlp", "*", "zo-feat-cls1"): HParams(lr_zo=5e-4, lr_bp=0.05, eps=1e-3, grad_clip=3.0),
    ("mlp", "*", "full-bp"): HParams(lr_zo=0.0, lr_bp=0.2, eps=1e-3, grad_clip=0.0),
    ("pointnet", "*", "full-zo"): HParams(lr_zo=1e-3, lr_bp=0.0, eps=1e-3, grad_clip=1.0, batch_size=32,
                                          gradient_bits=3, zo_range=3),
    ("pointnet", "*", "zo-feat-cls2"): HParams(lr_zo=3e-4, lr_bp=0.03, eps=1e-3, grad_clip=1.0, batch_size=16,
                                               int8_batch_size=32, gradient_bits=3, zo_range=3),
    ("pointnet", "*", "zo-feat-cls1"): HParams(lr_zo=3e-4, lr_bp=0.03, eps=1e-3, grad_clip=1.0, batch_size=16,
                                               int8_batch_size=32, gradient_bits=3, zo_range=3),
    ("pointnet", "*", "full-bp"): HParams(lr_zo=0.0, lr_bp=0.01, eps=1e-3, grad_clip=0.0, batch_size=32,
                                          gradient_bits=3, zo_range=3),
}

# LeNet-5 INT8 cells whose 100-epoch validation pair chose NITI's uniform init (above); the rest of each entry is the
# cell's FP32 values as they are.
_TABLE.update({("lenet5", d, m): replace(_TABLE.get(("lenet5", d, m), _TABLE[("lenet5", "*", m)]),
                                          int8_init="xavier_uniform")
               for d, m in (("mnist", "full-zo"), ("mnist", "zo-feat-cls2"), ("mnist", "zo-feat-cls1"),
                            ("fashion-mnist", "full-zo"), ("fashion-mnist", "zo-feat-cls2"))})


# INT8 Full ZO and ZO-Feat-Cls2 on MNIST: b_zo 2 at r 64, validated over 100 epochs (above).
_TABLE.update({("lenet5", "mnist", m): replace(_TABLE["lenet5", "mnist", m], zo_range=r, zo_update_bits=2)
               for m, r in (("full-zo", 64), ("zo-feat-cls2", 64))})


def defaults(model, dataset: str, method: str, precision: str = "fp32") -> HParams:
    """The tuned defaults of a model named 'lenet5' or 'pointnet' in `precision`; methods that are not one of the
    paper's four use Cls1's. `model` may also be a model of your own (any object, e.g. an elasticzo.nn.Sequential):
    it gets LeNet-5's values for the method, a sound starting point for small networks that was not tuned for
    yours."""
    if models.arithmetic(precision) not in models.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose fp32, int8 or int8-intonly")
    hp = _lookup(model, dataset, method)
    if precision != "fp32" and hp.int8_batch_size is not None:
        return replace(hp, batch_size=hp.int8_batch_size, int8_batch_size=None)
    return hp


def _lookup(model, dataset, method):
    if not isinstance(model, str):
        model = "lenet5"
    key_method = method if method in ("full-zo", "zo-feat-cls2", "zo-feat-cls1", "full-bp") else "zo-feat-cls1"
    for ds in (dataset, "*"):
        if (model, ds, key_method) in _TABLE:
            return _TABLE[(model, ds, key_method)]
    known = sorted({m for m, _, _ in _TABLE})
    raise ValueError(f"no default hyperparameters for a model named {model!r} (tuned: {', '.join(known)}); pass "
                     "your model itself for untuned starting values, or give the hyperparameters explicitly")
