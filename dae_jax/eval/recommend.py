"""Choosing the chain: for every evaluated chain the step to stop at, and the one chain (with its length) that
``--mode=sample`` and ``pretrained.load_sampler`` use when ``chain.num_steps=-1``.

The score: the lowest SWD to the held-out images, among the steps that keep recall (Kynkaanniemi et al.) at no
less than half of the highest recall any step of any chain reaches. SWD measures the whole distribution, so it is
the score; but a chain can settle on a few good faces, and its SWD on patches barely notices, where recall drops:
the floor rules such steps out. Half, because recall on a few dozen samples moves by several points from run to
run, and a collapse loses far more than half. The floor is the same for every chain, so the chains' choices
compare, and the winner is the chain whose choice has the lowest SWD. A chain none of whose steps reaches the
floor still gets its lowest-SWD step, marked not eligible, and cannot win. Without recall (fewer than two
held-out images) the score is SWD alone.
"""

import dataclasses
import json

import numpy as np

from dae_jax import chains, sampling, storage
from dae_jax.errors import InputError

RECALL_FLOOR = 0.5
SUMMARY = "eval/summary.json"


def recall_floor(curves: dict) -> float:
  """RECALL_FLOOR x the highest recall of any step of any chain; 0 when the curves have no recall."""
  recalls = [max(c["recall"]) for c in curves.values() if "recall" in c]
  return RECALL_FLOOR * max(recalls) if recalls else 0.0


def choose_step(curve: dict, floor: float) -> dict:
  """{"step", "swd", "eligible"} (plus "precision", "recall" when measured): the lowest-SWD step whose recall is
  at least ``floor``, or the lowest-SWD step of all, not eligible, when none is."""
  swd = np.asarray(curve["swd"], float)
  recall = np.asarray(curve.get("recall", np.ones_like(swd)), float)
  eligible = recall >= floor
  candidates = swd if not eligible.any() else np.where(eligible, swd, np.inf)
  step = int(np.argmin(candidates))
  choice = {"step": step, "swd": float(swd[step]), "eligible": bool(eligible.any())}
  for name in ("precision", "recall"):
    if name in curve:
      choice[name] = float(curve[name][step])
  return choice


def choose_steps(curves: dict) -> dict:
  """{chain name: ``choose_step``} with one recall floor for all chains."""
  floor = recall_floor(curves)
  return {name: choose_step(curve, floor) for name, curve in curves.items()}


def recommended(choices: dict, evaluated: dict) -> dict:
  """The winning chain: its name, start, ChainSpec fields (as ``sampling.ChainSpec`` takes them) and length.

  ``evaluated`` maps the same names to ``chains.Chain``; ties go to the first chain.
  """
  eligible = [name for name, choice in choices.items() if choice["eligible"]] or list(choices)
  name = min(eligible, key=lambda n: choices[n]["swd"])
  return {
    "chain": name,
    "start": evaluated[name].start,
    "spec": dataclasses.asdict(evaluated[name].spec),
    "num_steps": choices[name]["step"],
    "swd": choices[name]["swd"],
    "rule": f"lowest SWD among steps with recall >= {RECALL_FLOOR} x the best recall of any chain",
  }


def read(workdir: str) -> dict:
  """The ``recommended`` entry of ``<workdir>/eval/summary.json``, checked: ``spec`` is a ChainSpec, ``num_steps``
  an int >= 0. InputError when the file or the entry is missing."""
  path = storage.path(workdir) / SUMMARY
  if not path.exists():
    raise InputError(f"chain.num_steps=-1 reads {path}, which does not exist; run --mode=eval on this workdir first")
  entry = json.loads(path.read_text()).get("recommended")
  if entry is None:
    raise InputError(f"{path} has no 'recommended' chain (an older eval wrote it); run --mode=eval again")
  num_steps = entry.get("num_steps")
  if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
    raise InputError(f"{path} recommends num_steps={num_steps!r}; expected an int >= 0, run --mode=eval again")
  try:
    spec = sampling.ChainSpec(**entry["spec"])
  except (KeyError, TypeError) as e:
    raise InputError(
      f"{path} holds a recommended spec that ChainSpec does not take ({e}); run --mode=eval again"
    ) from e
  if entry.get("start") not in chains.STARTS:
    raise InputError(f"{path} recommends start={entry.get('start')!r}; expected one of {', '.join(chains.STARTS)}")
  return dict(entry, spec=spec)
