"""Training steps on a busy board: LeNet-5, MNIST, ZO-Feat-Cls1, batch 64, with 1 thread and the default thread count,
first with one busy process per core (as on a Raspberry Pi that also drives a camera or a web server), then on the
idle machine. Prints the seconds of each, the ratios and the machine's load.

    python benchmarks/busy_board.py [--steps 200] [--repeats 3] [--json]

Targets (issue 10): busy, default threads / 1 thread <= 1.15; idle, 1 thread / 2 threads >= 1.5.
Every timing runs in a fresh process that sets no environment variable, so "default" is the thread count a user
gets. The busy processes are stopped whatever happens: on return, exception, Ctrl-C or SIGTERM/SIGHUP here, and
each one also exits by itself as soon as this script's process is gone (even after a SIGKILL).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

# A busy process: pure computation, checking every few milliseconds that its parent is still alive.
SPINNER = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100000):
        pass
"""


def worker(threads, steps, warmup, data_dir):
    """Times `steps` ZO-Feat-Cls1 steps in this process; threads 0 keeps the library's default."""
    import elasticzo
    from elasticzo import hparams
    from elasticzo.data import batches, load_dataset

    if threads > 0:
        elasticzo.set_num_threads(threads)
    hp = hparams.defaults("lenet5", "mnist", "zo-feat-cls1")
    trainer = elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method="zo-feat-cls1", lr_zo=hp.lr_zo,
                                  lr_bp=hp.lr_bp, eps=hp.eps, grad_clip=hp.grad_clip, seed=0)
    train = load_dataset("mnist", data_dir, "train")
    # The batches are made before the clock starts: this times the library's steps, not numpy's gathering.
    data = []
    for x, y in batches(train, hp.batch_size, shuffle=True, seed=0):
        data.append((x, y))
        if len(data) == warmup + steps:
            break
    for x, y in data[:warmup]:
        trainer.core.step(x, y)
    start, cpu = time.perf_counter(), time.process_time()
    for x, y in data[warmup:]:
        trainer.core.step(x, y)
    return dict(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu,
                threads=elasticzo.num_threads())


def timed_run(threads, args):
    """worker() in a fresh interpreter, so the default thread count is really the default."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def measure(args):
    """Repeats of (1 thread, default), interleaved so that both see the same load; medians and loads."""
    runs = {"1": [], "default": []}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for key, threads in (("1", 1), ("default", 0)):
            runs[key].append(timed_run(threads, args))
            loads.append(os.getloadavg()[0])
    out = {key: dict(seconds=statistics.median(r["seconds"] for r in rs),
                     cpu_seconds=statistics.median(r["cpu_seconds"] for r in rs),
                     all_seconds=[r["seconds"] for r in rs], threads=rs[0]["threads"]) for key, rs in runs.items()}
    out["default_over_1"] = out["default"]["seconds"] / out["1"]["seconds"]
    out["load_1min"] = [round(v, 2) for v in loads]
    return out


def start_spinners(count):
    return [subprocess.Popen([sys.executable, "-c", SPINNER, str(os.getpid())], stdin=subprocess.DEVNULL)
            for _ in range(count)]


def stop_spinners(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="timed training steps per run (default 200)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before the clock starts (default 5)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each thread count per condition; medians shown")
    p.add_argument("--busy", type=int, default=os.cpu_count(), help="busy processes (default: one per core)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST (default: the package's search)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.busy < 1:
        p.error("--steps, --repeats and --busy must be >= 1, --warmup >= 0")
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.steps, args.warmup, args.data_dir)))
        return 0

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    try:
        spinners = start_spinners(args.busy)
        try:
            time.sleep(1.0)  # let the scheduler see them as long-running
            busy = measure(args)
        finally:
            stop_spinners(spinners)
        time.sleep(2.0)
        idle = measure(args)
    except KeyboardInterrupt as exc:
        print(f"busy_board: interrupted ({exc or 'Ctrl-C'}); busy processes stopped", file=sys.stderr)
        return 130
    idle["one_over_default"] = idle["1"]["seconds"] / idle["default"]["seconds"]
    results = dict(steps=args.steps, batch=64, method="zo-feat-cls1", cores=os.cpu_count(), busy_processes=args.busy,
                   busy=busy, idle=idle)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"LeNet-5, MNIST, ZO-Feat-Cls1, batch 64, {args.steps} steps, median of {args.repeats} runs; "
          f"{os.cpu_count()} cores, default = {idle['default']['threads']} threads")
    for name, r in (("busy", busy), ("idle", idle)):
        print(f"  {name:4s} ({args.busy if name == 'busy' else 0} busy processes): 1 thread {r['1']['seconds']:.3f} s, "
              f"default {r['default']['seconds']:.3f} s; 1-minute load {r['load_1min']}")
    print(f"  busy: default / 1 thread = {busy['default_over_1']:.2f}x (target <= 1.15x)")
    print(f"  idle: 1 thread / default = {idle['one_over_default']:.2f}x (target >= 1.5x with 2 threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
