"""The README's prior-match table: how close the codes of held-out images come to N(0, I), for the DAAE's training
schemes and the DVAE, on the demo and on held-out MNIST digits, and what that does to decoded prior samples.

  python benchmarks/prior_match_study.py --root workdir/prior_match        # trains and evaluates every row
  python benchmarks/prior_match_study.py --root workdir/prior_match --table_only   # re-prints from the summaries

Each row is one `python -m dae_jax.main` training run, then `--mode=eval` on the same workdir (about 4-5 minutes a
row on a 2-core CPU); a row whose eval/summary.json exists is not run again. The table gives the prior match of
the held-out codes (corrupted as in training), the reconstruction BCE per pixel of corrupted held-out images, and
the quality of decoded prior samples d(z) before and after Fig. 3's 20-step chain: SWD x 1e3 to held-out images
(lower is better) and the k-NN precision and recall of the sample set (higher is better).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]

# (row name, config, overrides). Every DAAE row names its scheme and code BatchNorm, so a row means the same
# whatever the defaults are: the joint update without the code BatchNorm (the default before it), and with it
# (configs/daae.py's default). The AAE's phases scheme is a row away: (name, ["--config...scheme=phases", ...]).
_DAAE_ROWS = (
  ("daae_joint", ["--config.loss.adversarial_scheme=joint", "--config.model.code_batchnorm=false"]),
  ("daae_joint_codebn", ["--config.loss.adversarial_scheme=joint", "--config.model.code_batchnorm=true"]),
)
ROWS = [
  (f"{data}_{name}", f"configs/{objective}.py:{data}", overrides)
  for data in ("demo", "mnist")
  for name, objective, overrides in (*((name, "daae", o) for name, o in _DAAE_ROWS), ("dvae", "dvae", []))
]
PAPER_CHAIN_STEPS = 20


def _run(root: pathlib.Path, name: str, config: str, overrides: list) -> None:
  workdir = root / name
  if (workdir / "eval" / "summary.json").exists():
    return
  for mode in ("train", "eval"):
    command = [sys.executable, "-m", "dae_jax.main", f"--config={config}", f"--workdir={workdir}", f"--mode={mode}"]
    print(" ".join(command[1:] + overrides), file=sys.stderr, flush=True)
    subprocess.run(command + overrides, cwd=REPO, check=True)


def _row(name: str, summary: dict) -> str:
  match, chain = summary["prior_match"], summary["chains"]["from_prior"]
  steps = min(PAPER_CHAIN_STEPS, len(chain["swd"]) - 1)
  before, after = (
    (chain["swd"][0], chain["precision"][0], chain["recall"][0]),
    (chain["swd"][steps], chain["precision"][steps], chain["recall"][steps]),
  )
  discriminator = match.get("discriminator_accuracy")
  cells = [
    name,
    f"{match['probe_accuracy']:.3f}",
    f"{match['frechet_distance']:.2f} ({match['frechet_null']:.2f})",
    "-" if discriminator is None else f"{discriminator:.3f}",
    f"{summary['reconstruction']['corrupted']['bce_per_pixel']:.4f}",
    "{:.1f} / {:.2f} / {:.2f}".format(*before),
    "{:.1f} / {:.2f} / {:.2f}".format(*after),
    f"{chain['best_swd']:.1f} ({chain['best_step']})",
  ]
  return "| " + " | ".join(cells) + " |"


def table(root: pathlib.Path) -> str:
  header = [
    "run",
    "probe accuracy",
    "Fréchet to N(0, I) (sampling alone)",
    "discriminator accuracy",
    "recon. BCE / pixel",
    "d(z): SWD / precision / recall",
    f"after {PAPER_CHAIN_STEPS} Fig. 3 steps",
    "best SWD (step)",
  ]
  lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
  for name, _, _ in ROWS:
    path = root / name / "eval" / "summary.json"
    if path.exists():
      lines.append(_row(name, json.loads(path.read_text())))
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", default="workdir/prior_match", help="one workdir per row under it")
  parser.add_argument("--table_only", action="store_true", help="print the table from existing summaries")
  parser.add_argument("--rows", default="", help="comma-separated row names to run (default: all)")
  args = parser.parse_args()
  root = pathlib.Path(os.path.abspath(args.root))
  names = [name for name, _, _ in ROWS]
  chosen = args.rows.split(",") if args.rows else names
  unknown = sorted(set(chosen) - set(names))
  if unknown:
    parser.error(f"--rows: {', '.join(unknown)} is not a row; choose from {', '.join(names)}")
  if not args.table_only:
    for row in ROWS:
      if row[0] in chosen:
        _run(root, *row)
  print(table(root))


if __name__ == "__main__":
  main()
