"""Where does an ElasticZO-INT8 run spend its steps? Trains an INT8 LeNet-5 on MNIST (5,000 training images held
out for validation) and every --every steps prints one JSON line: the mean training loss since the last line,
validation accuracy, how often the ternary gradient g was 0 / +1 since the last line, and per parameter layer the
mean |w| (mantissa units), the fraction of weights at the clip +-127, their mean distance from the initial weights
and the fraction changed since the last line. --p-zero 1 freezes the ZO part (zeta is all zero, so g = 0 and nothing
moves): the backprop head alone. --int8-init xavier_uniform starts from NITI's uniform weights instead of the layers'
Xavier normal.
"""

import argparse
import json
import os

import numpy as np

import elasticzo
from _common import add_runtime_args, load_split, validation_split


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="zo-feat-cls1")
    p.add_argument("--steps", type=int, default=2800, help="steps in all (default 2800: 3 epochs at batch 64)")
    p.add_argument("--every", type=int, default=700, help="steps between two lines (default 700)")
    p.add_argument("--range", type=int, default=None, help="perturbation range r (default: the library's)")
    p.add_argument("--p-zero", type=float, default=None, help="fixed p_zero (default: the paper's schedule)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--int8-init", choices=elasticzo.models.INT8_INITS, default=None,
                   help="weight initialization (default: the layers' own, xavier_normal)")
    p.add_argument("--val", type=int, default=5000)
    add_runtime_args(p)
    args = p.parse_args()
    train, val = validation_split(load_split(p, "mnist", args.data_dir, "train"), args.val)
    elasticzo.set_num_threads(args.threads)
    model = elasticzo.models.lenet5(seed=0, precision="int8", int8_init=args.int8_init)
    extra = {} if args.range is None else {"zo_range": args.range}
    trainer = elasticzo.ElasticZO(model, method=args.method, seed=0, zo_p_zero=args.p_zero, **extra)
    names = model.parameter_names()
    start = {n: model.state_dict()[n].astype(np.int32) for n in names}
    last = dict(start)
    signs, losses = [], []
    epoch = 0
    while len(signs) < args.steps:
        trainer.start_epoch(epoch)
        for x, y in trainer.training_batches(train, args.batch, epoch):
            out = trainer.core.step(x, y)
            signs.append(out["projected_grad"])
            losses.append(out["loss"])
            if len(signs) % args.every == 0:
                state = model.state_dict()
                layers = {}
                for n in names:
                    w = state[n].astype(np.int32)
                    layers[n.split(".")[0]] = dict(mean_abs=round(float(np.abs(w).mean()), 1),
                                                   at_clip=round(float((np.abs(w) == 127).mean()), 4),
                                                   moved=round(float(np.abs(w - start[n]).mean()), 1),
                                                   changed=round(float((w != last[n]).mean()), 3))
                    last[n] = w
                g = np.array(signs[-args.every:])
                print(json.dumps(dict(step=len(signs), train_loss=round(float(np.mean(losses[-args.every:])), 4),
                                      val_accuracy=trainer.evaluate(val)["accuracy"],
                                      g_zero=round(float((g == 0).mean()), 3), g_plus=round(float((g > 0).mean()), 3),
                                      load=round(os.getloadavg()[0], 1), layers=layers)), flush=True)
            if len(signs) == args.steps:
                break
        epoch += 1


if __name__ == "__main__":
    main()
