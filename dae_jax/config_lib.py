"""Default hyperparameters (the paper's), variants as overrides, and the validation every run goes through.

Config files in ``configs/`` start from :func:`default_config` and override a few fields; their variants
(``--config=configs/daae.py:demo``) are dictionaries of dotted overrides that :func:`with_variant` applies.
Every key exists here, so a locked config turns a typo such as ``--config.noise.sigam=0.25`` into an error
instead of a new key.
"""

from collections.abc import Iterator, Mapping
import difflib
import importlib.util
import math
import os
from typing import Any

import ml_collections

from dae_jax import objectives
from dae_jax.errors import InputError

ARCHITECTURES = ("conv", "mlp")
IMAGE_SIZES = (32, 64)
DATA_SOURCES = ("celeba", "celeba_files", "images", "lfw_faces", "mnist")
BATCHNORM_MODES = ("batch", "running")
# Fig. 3's chain as its caption says (noise before each encoding), or as Eq. 11 writes it (none).
FIG3_READINGS = ("caption", "eq11")
COMPUTE_DTYPES = ("float32", "bfloat16")


def default_config() -> ml_collections.ConfigDict:
  """The paper's setup where it gives one: DAAE on CelebA 64x64, sigma^2 = 0.25, Adam(2e-4, 0.5, 0.999), 20 epochs;
  batch 64 is DCGAN's and the authors' code's (the paper gives none)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.source = "celeba"
  config.data.image_size = 64
  config.data.channels = 3
  # Where a prepared TFDS ``celeb_a`` lives; empty means TFDS's default (~/tensorflow_datasets or $TFDS_DATA_DIR).
  config.data.data_dir = ""
  # For "celeba_files": img_align_celeba.zip or the img_align_celeba/ folder; for "images": a folder of images
  # (searched recursively) or a .npy/.npz array.
  config.data.path = ""
  config.data.split = "train"
  # Side of the centred square cut before resizing (score_sde's 140 for CelebA); 0 = the largest one.
  config.data.crop = 140
  # Where prepared uint8 arrays are kept ("" = ~/.cache/dae_jax); see dae_jax/data/cache.py.
  config.data.cache_dir = ""
  # Keep the whole uint8 dataset on every device and gather batches there (host sends only indices).
  config.data.device_resident = False
  # Mirror each training image left-right with probability 1/2 (on the device).
  config.data.flip = False

  config.model = ml_collections.ConfigDict()
  config.model.objective = "daae"
  config.model.architecture = "conv"
  config.model.widths = (64, 128, 256, 512)
  config.model.latent_dim = 100
  config.model.mlp_hidden = (512, 512)
  config.model.disc_hidden = (1000, 1000)
  config.model.disc_dropout = 0.2
  config.model.leaky_relu_slope = 0.2
  # A BatchNorm without scale or shift on the code (conv encoders of one code: DAE, DAAE): every dimension then
  # has mean 0 and variance 1, as under the prior. configs/daae.py turns it on: with it the DAAE's codes of
  # held-out images match N(0, I) (README, "The DAAE's prior match"); the paper's encoder has none.
  config.model.code_batchnorm = False

  config.noise = ml_collections.ConfigDict()
  # Standard deviation of the Gaussian corruption; the paper's variance sigma^2 = 0.25 is std 0.5.
  config.noise.sigma = 0.5
  config.noise.clip = False
  # M > 1 gives the integrated (iDAAE-style) corruption: the regulariser sees the mean of M encodings.
  config.noise.num_copies = 1

  config.loss = ml_collections.ConfigDict()
  config.loss.reconstruction = "bce"
  # See objectives.REDUCTIONS: "sum" over pixels is the log-likelihood; "mean" weights the regulariser more.
  config.loss.reduction = "sum"
  config.loss.kl_weight = 1.0
  config.loss.adversarial_weight = 1.0
  # The DAAE's training scheme (objectives.ADVERSARIAL_SCHEMES). "joint": the adversarial term added to the
  # reconstruction loss in one update; "phases" (Makhzani et al.'s AAE): reconstruction, then the discriminator,
  # then the encoder on the adversarial loss with an Adam of its own. Measured at commit de48d59 with the
  # per-channel decoder BatchNorm, joint matched the prior better (probe 0.48 vs 0.93 on the demo, 0.71 vs 0.91 on
  # held-out MNIST) and reconstructed better, so it is the default.
  config.loss.adversarial_scheme = "joint"
  # Weight of an R1 gradient penalty on the discriminator at prior samples (0 = none).
  config.loss.disc_gradient_penalty = 0.0

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999
  config.optim.disc_learning_rate = 2e-4

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 64
  config.train.num_steps = 20 * 162_770 // 64  # 20 epochs of CelebA's training split.
  config.train.log_every_steps = 100
  config.train.checkpoint_every_steps = 1000
  config.train.figures_every_steps = 5000
  config.train.max_checkpoints = 3
  # 0 means every local device.
  config.train.num_devices = 0
  # Discriminator updates per training step (adversarial objectives).
  config.train.disc_steps = 1
  # Activations and convolutions in "bfloat16" on accelerators (models.py); parameters, optimiser states,
  # BatchNorm statistics and losses stay float32. Only the speed and rounding change: not a fitting key.
  config.train.compute_dtype = "float32"
  # Training steps per dispatch, run in one device loop (multi_step.py); log, checkpoint and figure
  # intervals must be multiples of it. More than 1 helps when the host's dispatch is slower than a small step.
  config.train.steps_per_call = 1
  # > 0: a jax.profiler trace of that many steps, after the first (compiling) call, in <workdir>/profile/.
  config.train.profile_steps = 0

  config.chain = ml_collections.ConfigDict()
  config.chain.num_samples = 16
  config.chain.num_steps = 20
  config.chain.long_num_steps = 100
  # Std of the noise added before each encoding in the Fig. 2 chain.
  config.chain.noise_std = 0.5
  config.chain.batchnorm = "batch"
  config.chain.posterior_sample = False
  # Nguyen et al. transition x + eta * (R(x) - x) + N(0, eps^2); eta = 1, eps = 0 is the paper's x <- R(x).
  config.chain.step_size = 1.0
  config.chain.step_noise_std = 0.0
  # Fig. 3's chain from d(z): "caption" adds N(0, noise_std^2) before each encoding, as the figure's caption says
  # (as in Fig. 2); "eq11" is Eq. 11's noise-free x <- R(x). See chains.FIG3_NOISE.
  config.chain.fig3 = "caption"

  config.eval = ml_collections.ConfigDict()
  config.eval.num_samples = 64
  # Held-out images for SWD and reconstruction; sources without splits (the demo) compare with training images.
  config.eval.split = "test"
  config.eval.swd_patches_per_image = 128
  # The Nguyen et al. chain evaluated beside the paper's three.
  config.eval.nguyen_step_size = 0.5
  config.eval.nguyen_noise_std = 0.05
  config.eval.probe_steps = 500
  # Held-out images whose codes (corrupted as in training) eval compares with as many N(0, I) samples.
  config.eval.prior_match_samples = 2048
  return config


def _check_choice(name: str, value, allowed) -> None:
  if value not in allowed:
    raise InputError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def _check_positive(name: str, value, *, allow_zero: bool = False) -> None:
  # NaN compares false with everything, so without the finiteness test it would pass and surface later as a
  # diverged loss blamed on the learning rate.
  bound = ">= 0" if allow_zero else "> 0"
  if not math.isfinite(value):
    raise InputError(f"{name}={value!r} is not allowed; it must be a finite number {bound}")
  if value < 0 or (value == 0 and not allow_zero):
    raise InputError(f"{name}={value!r} is not allowed; it must be {bound}")


def _check_intervals_fit_steps_per_call(train) -> None:
  """Logs, checkpoints and figures happen between dispatches, so each interval must be a whole number of them."""
  k = train.steps_per_call
  names = ("log_every_steps", "checkpoint_every_steps", "figures_every_steps")
  misfits = [f"train.{name}={train[name]}" for name in names if train[name] % k]
  if misfits:
    raise InputError(
      f"{', '.join(misfits)} {'is' if len(misfits) == 1 else 'are'} not a multiple of train.steps_per_call={k}; "
      f"make every log, checkpoint and figure "
      f"interval a multiple of {k}, or choose a steps_per_call that divides them"
    )


def _check_fraction(name: str, value) -> None:
  """A value in [0, 1): Adam's decay rates and the dropout rate."""
  if not (math.isfinite(value) and 0 <= value < 1):
    raise InputError(f"{name}={value!r} is not allowed; it must be a finite number >= 0 and < 1")


def _keys(config: ml_collections.ConfigDict, prefix: str = "") -> Iterator[str]:
  """Every dotted key, groups included."""
  for name, value in config.items():
    yield prefix + name
    if isinstance(value, ml_collections.ConfigDict):
      yield from _keys(value, f"{prefix}{name}.")


def _closest_key(dotted: str, known: set) -> str:
  group, _, name = dotted.rpartition(".")
  siblings = sorted(k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == group)
  close = difflib.get_close_matches(name, siblings, n=1)
  if close:
    return f"did you mean {(group + '.' if group else '') + close[0]!r}?"
  return f"{group or 'the top level'} has {', '.join(siblings)}"


def check_known_keys(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict) -> None:
  """An InputError naming the first key of ``config`` that ``reference`` lacks.

  A config file's ``get_config`` runs before the config is locked, so ``config.model.fooo = 1`` there adds a key
  that nothing reads: the run would otherwise ignore it in silence.
  """
  known = set(_keys(reference))
  unknown = next((k for k in _keys(config) if k not in known), None)
  if unknown is not None:
    raise InputError(
      f"config key {unknown!r} is not one dae_jax knows (config_lib.default_config); {_closest_key(unknown, known)}"
    )


# chain.num_steps=-1: --mode=sample and pretrained.load_sampler take the length (and chain) that --mode=eval
# recommended; training figures and eval itself, which run before any such choice, use the paper's 20.
CHAIN_STEPS_FROM_EVAL = -1
PAPER_CHAIN_STEPS = 20


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises InputError naming the first bad value and what is allowed, or a key the defaults do not have."""
  check_known_keys(config, default_config())
  _check_choice("model.objective", config.model.objective, tuple(objectives.OBJECTIVES))
  _check_choice("model.architecture", config.model.architecture, ARCHITECTURES)
  _check_choice("loss.reconstruction", config.loss.reconstruction, tuple(objectives.RECONSTRUCTION_LOSSES))
  _check_choice("loss.reduction", config.loss.reduction, tuple(objectives.REDUCTIONS))
  _check_choice("data.source", config.data.source, DATA_SOURCES)
  _check_choice("data.image_size", config.data.image_size, IMAGE_SIZES)
  _check_choice("data.channels", config.data.channels, (1, 3))
  _check_choice("chain.batchnorm", config.chain.batchnorm, BATCHNORM_MODES)
  _check_positive("data.crop", config.data.crop, allow_zero=True)
  if config.data.source in ("celeba_files", "images") and not config.data.path:
    raise InputError(f"data.source={config.data.source!r} needs data.path (a zip, folder or .npy/.npz)")
  _check_positive("noise.sigma", config.noise.sigma)
  _check_positive("noise.num_copies", config.noise.num_copies)
  _check_positive("model.latent_dim", config.model.latent_dim)
  _check_positive("optim.learning_rate", config.optim.learning_rate)
  _check_positive("train.batch_size", config.train.batch_size)
  _check_positive("train.num_steps", config.train.num_steps, allow_zero=True)
  _check_positive("train.num_devices", config.train.num_devices, allow_zero=True)
  for name in ("log_every_steps", "checkpoint_every_steps", "figures_every_steps", "max_checkpoints"):
    _check_positive(f"train.{name}", config.train[name])
  _check_choice("train.compute_dtype", config.train.compute_dtype, COMPUTE_DTYPES)
  _check_positive("train.steps_per_call", config.train.steps_per_call)
  _check_intervals_fit_steps_per_call(config.train)
  _check_positive("train.profile_steps", config.train.profile_steps, allow_zero=True)
  _check_positive("chain.num_samples", config.chain.num_samples)
  if config.chain.num_steps != CHAIN_STEPS_FROM_EVAL and not (
    math.isfinite(config.chain.num_steps) and config.chain.num_steps >= 0
  ):
    raise InputError(
      f"chain.num_steps={config.chain.num_steps!r} is not allowed; it must be >= 0, or -1 for the length "
      "--mode=eval recommended"
    )
  _check_positive("chain.long_num_steps", config.chain.long_num_steps, allow_zero=True)
  _check_positive("chain.noise_std", config.chain.noise_std, allow_zero=True)
  _check_positive("chain.step_size", config.chain.step_size)
  _check_positive("chain.step_noise_std", config.chain.step_noise_std, allow_zero=True)
  _check_positive("eval.num_samples", config.eval.num_samples)
  _check_positive("eval.swd_patches_per_image", config.eval.swd_patches_per_image)
  _check_choice("chain.fig3", config.chain.fig3, FIG3_READINGS)
  _check_positive("eval.prior_match_samples", config.eval.prior_match_samples)
  _check_positive("loss.kl_weight", config.loss.kl_weight, allow_zero=True)
  _check_positive("loss.adversarial_weight", config.loss.adversarial_weight, allow_zero=True)
  _check_choice("loss.adversarial_scheme", config.loss.adversarial_scheme, objectives.ADVERSARIAL_SCHEMES)
  _check_positive("loss.disc_gradient_penalty", config.loss.disc_gradient_penalty, allow_zero=True)
  _check_positive("optim.disc_learning_rate", config.optim.disc_learning_rate)
  _check_positive("train.disc_steps", config.train.disc_steps)
  if config.data.source == "mnist":
    _check_choice("data.split", config.data.split, ("train", "test"))
  _check_fraction("optim.b1", config.optim.b1)
  _check_fraction("optim.b2", config.optim.b2)
  _check_fraction("model.disc_dropout", config.model.disc_dropout)
  _check_positive("model.leaky_relu_slope", config.model.leaky_relu_slope, allow_zero=True)
  _check_positive("eval.nguyen_step_size", config.eval.nguyen_step_size)
  _check_positive("eval.nguyen_noise_std", config.eval.nguyen_noise_std, allow_zero=True)
  if config.model.code_batchnorm and (
    config.model.architecture != "conv" or objectives.OBJECTIVES[config.model.objective].variational
  ):
    raise InputError(
      f"model.code_batchnorm=True is not allowed with model.objective={config.model.objective!r} and "
      f"model.architecture={config.model.architecture!r}; it needs a conv encoder of one code (dae, daae)"
    )
  widths = tuple(config.model.widths)
  if not widths or any(w <= 0 for w in widths):
    raise InputError(f"model.widths={widths!r} is not allowed; give one or more positive channel counts")
  if config.data.image_size % 2 ** len(widths):
    raise InputError(
      f"model.widths={widths!r} has {len(widths)} stride-2 layers, which do not divide "
      f"data.image_size={config.data.image_size}; use at most {config.data.image_size.bit_length() - 1} widths"
    )


def data_shape(data_config) -> tuple:
  """The shape of one training example."""
  return (data_config.image_size, data_config.image_size, data_config.channels)


def with_variant(
  config: ml_collections.ConfigDict, variants: Mapping[str, Mapping[str, Any]], variant: str
) -> ml_collections.ConfigDict:
  """``config`` with the dotted overrides ``variants[variant]`` applied (a config file's ``get_config(variant)``).

  An override of a key that does not exist is an error, as it is on the command line.
  """
  if variant not in variants:
    raise InputError(f"config variant {variant!r} is not allowed; choose one of {', '.join(repr(v) for v in variants)}")
  for dotted, value in variants[variant].items():
    *groups, name = dotted.split(".")
    target = config
    for group in groups:
      target = target.get(group) if isinstance(target, ml_collections.ConfigDict) else None
    if not isinstance(target, ml_collections.ConfigDict) or name not in target:
      raise InputError(f"config variant {variant!r} sets {dotted!r}, which is not a config key")
    target[name] = value
  return config


def from_file(path: str, variant: str = "") -> ml_collections.ConfigDict:
  """What ``--config=path:variant`` gives the command line, for notebooks and scripts."""
  if not os.path.isfile(path):
    raise InputError(f"config file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location(f"dae_jax_config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant) if variant else module.get_config()
  config.lock()
  return config
