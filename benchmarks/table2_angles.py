"""The rule that picks Table 2's rotation angles, measured: a pretrained model's "w/o FT" accuracy per candidate angle.

The paper's angles were lost (SPEC §7). paper_table2.py's ANGLES puts, per precision and dataset, the pretrained
model's accuracy on the rotated test subset nearest the paper's two "w/o FT" figures of that precision, judged on
w/o FT alone, never on a fine-tuned cell. This script measures that accuracy for every candidate angle with the same
`elasticzo eval` call and the same subset (--test-samples drawn by --subset-seed) as paper_table2.py's w/o FT row,
and prints a Markdown table: per angle the accuracy, the angle nearest each of the paper's two figures marked.
"""

import argparse
import os
import sys
from pathlib import Path

from _common import DATASETS, subset_seed
from paper_table2 import PAPER_TABLE2, eval_rotated


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    for d in DATASETS:
        p.add_argument(f"--pretrained-{d}", metavar="RUN_DIR", default=None,
                       help=f"the pretraining run of {d} (paper_table2.py's OUT/[int8/]{d}/pretrain)")
    p.add_argument("--angles", type=float, nargs="+", required=True, help="candidate angles in degrees")
    p.add_argument("--test-samples", type=int, default=1024, help="as paper_table2.py (default 1024)")
    p.add_argument("--subset-seed", type=subset_seed, default=0, help="as paper_table2.py (default 0)")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    load = os.getloadavg()
    datasets = [d for d in DATASETS if getattr(args, f"pretrained_{d.replace('-', '_')}") is not None]
    if not datasets:
        p.error("give the pretraining run to measure: --pretrained-mnist and/or --pretrained-fashion-mnist")
    acc, picks = {}, []
    for d in datasets:
        checkpoint = Path(getattr(args, f"pretrained_{d.replace('-', '_')}")) / "checkpoint.safetensors"
        acc[d] = {a: 100 * eval_rotated(checkpoint, d, a, args)["accuracy"] for a in args.angles}
        for which, paper in zip(("smaller", "larger"), PAPER_TABLE2[args.precision][d]["w/o-ft"]):
            a = min(args.angles, key=lambda x: abs(acc[d][x] - paper))
            picks.append((d, a))
            print(f"{d}: the paper's {which} angle's w/o FT {paper:.2f} -> {a:g} deg ({acc[d][a]:.2f})")
    lines = [f"w/o FT (%) of the {args.precision.upper()} pretrained LeNet-5 on {args.test_samples} rotated test "
             f"images (subset seed {args.subset_seed}); * = the angle nearest one of the paper's two w/o FT figures "
             "(" + "; ".join(f"{d} {', '.join(f'{p:.2f}' for p in PAPER_TABLE2[args.precision][d]['w/o-ft'])}"
                             for d in datasets) + ")", "",
             "| angle | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for a in args.angles:
        lines.append(f"| {a:g}° | " + " | ".join(f"{acc[d][a]:.2f}{'*' if (d, a) in picks else ''}"
                                                  for d in datasets) + " |")
    command = " ".join(["python benchmarks/table2_angles.py"] + (sys.argv[1:] if argv is None else list(argv)))
    lines += ["", f"`{command}`; load average {load[0]:.1f} (2-core machine)."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
