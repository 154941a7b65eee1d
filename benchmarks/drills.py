"""Preemption drills: kill a training run at random moments, resume it, and compare with one never stopped.

  python benchmarks/drills.py --drills 10          # prints one line per drill, then "k/N bit-identical, L leftovers"

Each drill starts the tiny DVAE (60 steps, checkpoints every 10, figures at 30 and 60), waits a random time after
training has begun, sends SIGKILL or SIGTERM (alternating), then runs the same command again until it exits 0.
The final state must equal, leaf by leaf, that of an uninterrupted run, and the workdir must hold no leftovers:
no temporary files or checkpoint folders, no lock, no metrics step logged twice.
"""

import argparse
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dae_jax import config_lib, experiment  # noqa: E402  (the checkout's package, as the CLI runs it)

ARGS = [
  "--config=configs/dvae.py:tiny",
  "--config.train.num_steps=60",
  "--config.train.checkpoint_every_steps=10",
  "--config.train.log_every_steps=5",
  "--config.train.figures_every_steps=30",
]


def _command(workdir) -> list:
  return [sys.executable, "-m", "dae_jax.main", *ARGS, f"--workdir={workdir}"]


def _leaves(workdir) -> list:
  config = config_lib.from_file(str(REPO / "configs" / "dvae.py"), "tiny")
  config.train.num_steps = 60
  _, state = experiment.restore(config, str(workdir))
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def _leftovers(workdir: pathlib.Path) -> list:
  found = [str(p.relative_to(workdir)) for p in workdir.rglob("*") if p.name.endswith(".tmp") or "-tmp" in p.name]
  if (workdir / "run.lock").exists():
    found.append("run.lock")
  steps = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  if len(steps) != len(set(steps)):
    found.append(f"metrics.jsonl steps {steps}")
  return found


def _started(workdir: pathlib.Path) -> bool:
  metrics = workdir / "metrics.jsonl"
  return metrics.is_file() and bool(metrics.read_text())


def _training_time(workdir: pathlib.Path) -> float:
  """Seconds from the first metrics line to the end of an uninterrupted run: where a signal can land."""
  process = subprocess.Popen(_command(workdir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  while not _started(workdir) and process.poll() is None:
    time.sleep(0.01)
  start = time.perf_counter()
  if process.wait() != 0:
    raise SystemExit("the uninterrupted reference run failed")
  return max(time.perf_counter() - start, 0.1)


def drill(workdir: pathlib.Path, signum: int, delay: float) -> tuple:
  process = subprocess.Popen(_command(workdir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  while not _started(workdir) and process.poll() is None:
    time.sleep(0.01)
  time.sleep(delay)
  sent = process.poll() is None
  if sent:
    process.send_signal(signum)
  first = process.wait()
  for _ in range(3):  # A resume that is itself fine exits 0 at once.
    resumed = subprocess.run(_command(workdir), cwd=REPO, capture_output=True, text=True)
    if resumed.returncode == 0:
      break
  return sent, first, resumed.returncode, resumed.stderr


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--drills", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  rng = random.Random(args.seed)
  root = pathlib.Path(tempfile.mkdtemp(prefix="dae_jax_drills_"))
  reference = root / "reference"
  span = _training_time(reference)
  expected = _leaves(reference)
  identical = leftovers = 0
  for index in range(args.drills):
    signum = (signal.SIGKILL, signal.SIGTERM)[index % 2]
    delay = rng.uniform(0, 0.9 * span)
    workdir = root / f"drill{index}"
    sent, first, final, stderr = drill(workdir, signum, delay)
    same = final == 0 and all(np.array_equal(a, b) for a, b in zip(expected, _leaves(workdir), strict=True))
    left = _leftovers(workdir) if final == 0 else ["(resume failed) " + stderr.strip().splitlines()[-1]]
    identical += same
    leftovers += len(left)
    print(
      f"drill {index}: {signal.Signals(signum).name} after {delay:.2f} s"
      f"{'' if sent else ' (too late: the run had finished)'}, exit {first}, resume exit {final}, "
      f"{'bit-identical' if same else 'DIFFERENT'}, leftovers {left or 'none'}",
      flush=True,
    )
  print(f"{identical}/{args.drills} bit-identical, {leftovers} leftovers")
  return 0 if identical == args.drills and leftovers == 0 else 1


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
