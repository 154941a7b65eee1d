"""Layer by layer: the 64x64 model's 4x4 stride-2 convolutions, forward + input gradient + kernel gradient.

  python benchmarks/conv_layers.py                  # every layer, every form, PyTorch if installed
  python benchmarks/conv_layers.py --skip_slow      # without Flax's ConvTranspose (seconds per call here)
  python benchmarks/conv_layers.py --layers enc2,dec1 --repeats 9

Each form is one jitted ``value_and_grad`` of <y, g> with respect to the input and the kernel, for the
encoder's convolutions (3->64 @ 64x64 ... 256->512 @ 8x8) and the decoder's transposed ones (the mirror),
batch 64. The forms, a layer's PyTorch eager conv and a 2048x2048 fp32 matmul are timed interleaved (one
call each per repetition, the order rotated every repetition), so that a machine shared with other jobs moves
them together; ratios (to PyTorch, to the matmul's GFLOP/s) are taken within a repetition, then the median and
the range over repetitions are printed.
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from dae_jax import upconv

BATCH = 64
PEAK_SIZE = 2048
# name: (kind, input height = width, input channels, output channels)
LAYERS = {
  "enc1": ("down", 64, 3, 64),
  "enc2": ("down", 32, 64, 128),
  "enc3": ("down", 16, 128, 256),
  "enc4": ("down", 8, 256, 512),
  "dec1": ("up", 4, 512, 256),
  "dec2": ("up", 8, 256, 128),
  "dec3": ("up", 16, 128, 64),
  "dec4": ("up", 32, 64, 3),
}
_NHWC = ("NHWC", "HWIO", "NHWC")
_NCHW = ("NCHW", "HWIO", "NCHW")


def gflop(kind: str, size: int, c_in: int, c_out: int) -> float:
  """Forward + input gradient + kernel gradient: three matmuls of the same size."""
  out_pixels = (size // 2 if kind == "down" else size) ** 2
  return 3 * 2 * BATCH * out_pixels * 16 * c_in * c_out / 1e9


def _module(module):
  return lambda x, k: module.apply({"params": {"kernel": k}}, x)


def _flax(kind, c_out):
  if kind == "down":
    return _module(nn.Conv(c_out, (4, 4), (2, 2), ((1, 1), (1, 1)), use_bias=False))
  return _module(nn.ConvTranspose(c_out, (4, 4), (2, 2), "SAME", use_bias=False))


def _dae_jax(kind, c_out):
  return _module((upconv.DownConv if kind == "down" else upconv.UpConv)(c_out, use_bias=False))


def _strided_kernel(kind, k):
  """Every form below computes S_K or S_K^T; the decoder's Flax ConvTranspose kernel is S's kernel flipped."""
  return k if kind == "down" else jnp.swapaxes(k, 2, 3)[::-1, ::-1]


def _im2col16(z):
  """Patches by 16 strided slices of the padded input (no space-to-depth)."""
  n, h, w, _ = z.shape
  padded = jnp.pad(z, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([padded[:, i : i + h : 2, j : j + w : 2] for i in range(4) for j in range(4)], axis=-1)


def _im2col16_form(kind):
  if kind == "down":
    return lambda z, k: _im2col16(z) @ k.reshape(-1, k.shape[-1])

  def up(x, k):
    kernel = _strided_kernel(kind, k)
    n, h, w, _ = x.shape
    shape = jax.ShapeDtypeStruct((n, 2 * h, 2 * w, kernel.shape[2]), x.dtype)
    return jax.linear_transpose(_im2col16, shape)(x @ kernel.reshape(-1, kernel.shape[-1]).T)[0]

  return up


def _s2d_autodiff(kind):
  """dae_jax's space-to-depth patches and one matmul, but differentiated by JAX rather than by hand."""
  if kind == "down":
    return lambda z, k: upconv.patches(z) @ upconv.kernel_matrix(k)

  def up(x, k):
    kernel = _strided_kernel(kind, k)
    n, h, w, _ = x.shape
    return upconv.unpatch(x @ upconv.kernel_matrix(kernel).T, (n, 2 * h, 2 * w, kernel.shape[2]))

  return up


def _s2d_conv(kind):
  """Space-to-depth, then XLA's 2x2 stride-1 convolution on the 4x channels."""
  if kind != "down":
    return None

  def down(z, k):
    n, h, w, c = z.shape
    s = jnp.pad(z, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(n, h // 2 + 1, 2, w // 2 + 1, 2, c)
    s = s.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // 2 + 1, w // 2 + 1, 4 * c)
    kernel = k.reshape(2, 2, 2, 2, c, -1).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c, -1)
    return lax.conv_general_dilated(s, kernel, (1, 1), "VALID", dimension_numbers=_NHWC)

  return down


# Output phase a of T reads input rows (i - 1, i) for a = 0 and (i, i + 1) for a = 1; these are the rows of S's
# kernel that multiply them.
_PHASE_TAPS = ((3, 1), (2, 0))


def _phase_kernel(kernel):
  """S's kernel [4, 4, I, O] -> [2, 2, O, 4 I]: the stride-1 kernel producing the four output phases of T."""
  transposed = jnp.swapaxes(kernel, 2, 3)
  rows = []
  for t in range(2):
    taps = [
      jnp.concatenate([transposed[_PHASE_TAPS[a][t], _PHASE_TAPS[b][s]] for a in (0, 1) for b in (0, 1)], axis=-1)
      for s in range(2)
    ]
    rows.append(jnp.stack(taps))
  return jnp.stack(rows)


def _interleave_phases(phases, h, w):
  n, channels = phases.shape[0], phases.shape[-1] // 4
  phases = phases.reshape(n, h + 1, w + 1, 2, 2, channels)
  rows = [jnp.stack([phases[:, a : a + h, b : b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, channels)


def _phase_conv(x, kernel):
  """T as XLA's stride-1 2x2 convolution to the four output phases, then interleaved."""
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  phases = lax.conv_general_dilated(padded, _phase_kernel(kernel), (1, 1), "VALID", dimension_numbers=_NHWC)
  return _interleave_phases(phases, x.shape[1], x.shape[2])


def _xla_strided(z, k):
  return lax.conv_general_dilated(z, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NHWC)


def _xla_kernel_grad(z, dy, k):
  return jax.vjp(lambda k: _xla_strided(z, k), k)[1](dy)[0]


@jax.custom_vjp
def _before_strided(z, k):
  return _xla_strided(z, k)


_before_strided.defvjp(
  lambda z, k: (_xla_strided(z, k), (z, k)), lambda r, dy: (_phase_conv(dy, r[1]), _xla_kernel_grad(r[0], dy, r[1]))
)


@jax.custom_vjp
def _before_transposed(x, k):
  return _phase_conv(x, k)


_before_transposed.defvjp(
  lambda x, k: (_phase_conv(x, k), (x, k)), lambda r, dy: (_xla_strided(dy, r[1]), _xla_kernel_grad(dy, r[0], r[1]))
)


def _xla_before(kind):
  """dae_jax up to this benchmark: XLA's strided conv, T as a phase conv, gradients by hand."""
  if kind == "down":
    return _before_strided
  return lambda x, k: _before_transposed(x, _strided_kernel(kind, k))


def _subpixel_matmul(kind):
  """T as its four output phases: 2x2 patches of the padded input, one matmul to 4x channels, interleaved."""
  if kind == "down":
    return None

  def up(x, k):
    kernel = _phase_kernel(_strided_kernel(kind, k))
    n, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    columns = jnp.concatenate([padded[:, a : a + h + 1, b : b + w + 1] for a in (0, 1) for b in (0, 1)], axis=-1)
    return _interleave_phases(columns @ kernel.reshape(4 * c, -1), h, w)

  return up


def _xla_nchw(kind):
  """XLA's conv with channels-first activations (the input is made NCHW outside the timed function)."""
  if kind == "down":
    return lambda x, k: lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_NCHW)
  return lambda x, k: lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=_NCHW)


FORMS = {
  "Flax (XLA conv)": _flax,
  "XLA conv, NCHW": lambda kind, c_out: _xla_nchw(kind),
  "dae_jax before (XLA conv + phase conv)": lambda kind, c_out: _xla_before(kind),
  "im2col 16 strided slices + matmul": lambda kind, c_out: _im2col16_form(kind),
  "space-to-depth + 2x2 XLA conv": lambda kind, c_out: _s2d_conv(kind),
  "sub-pixel phases + matmul": lambda kind, c_out: _subpixel_matmul(kind),
  "space-to-depth + matmul, autodiff": lambda kind, c_out: _s2d_autodiff(kind),
  "dae_jax now (same, gradients by hand)": _dae_jax,
}
SLOW = {("Flax (XLA conv)", "up"), ("XLA conv, NCHW", "up")}


def _jax_step(fn, x, k, g):
  # g is an argument, not a constant XLA would try to fold into the program.
  step = jax.jit(lambda x, k, g: jax.value_and_grad(lambda x, k: jnp.vdot(fn(x, k), g), argnums=(0, 1))(x, k))

  def call():
    jax.block_until_ready(step(x, k, g))

  return call


def _torch_step(kind, x, k, g):
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    return None
  conv = F.conv2d if kind == "down" else F.conv_transpose2d
  # PyTorch's conv_transpose2d takes S's kernel, [in, out, 4, 4]: Flax's ConvTranspose kernel flipped.
  weight = np.transpose(np.asarray(_strided_kernel(kind, k)), (3, 2, 0, 1))
  x_t = torch.tensor(np.transpose(np.asarray(x), (0, 3, 1, 2))).requires_grad_()
  w_t = torch.tensor(weight).requires_grad_()
  g_t = torch.tensor(np.transpose(np.asarray(g), (0, 3, 1, 2)))

  def call():
    x_t.grad = w_t.grad = None
    conv(x_t, w_t, stride=2, padding=1).backward(g_t)

  return call


def _matmul_step():
  a = jax.random.normal(jax.random.PRNGKey(9), (PEAK_SIZE, PEAK_SIZE))
  matmul = jax.jit(jnp.dot)
  return lambda: jax.block_until_ready(matmul(a, a))


def layer_steps(name: str, skip_slow: bool) -> dict:
  kind, size, c_in, c_out = LAYERS[name]
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(keys[0], (BATCH, size, size, c_in))
  k = 0.05 * jax.random.normal(keys[1], (4, 4, c_in, c_out))
  out_size = size // 2 if kind == "down" else 2 * size
  g = jax.random.normal(keys[2], (BATCH, out_size, out_size, c_out))
  steps = {"fp32 matmul 2048^3": _matmul_step()}
  for form, make in FORMS.items():
    fn = make(kind, c_out)
    if fn is None or (skip_slow and (form, kind) in SLOW):
      continue
    if form == "XLA conv, NCHW":
      to_nchw = (0, 3, 1, 2)
      steps[form] = _jax_step(fn, jnp.transpose(x, to_nchw), k, jnp.transpose(g, to_nchw))
    else:
      steps[form] = _jax_step(fn, x, k, g)
  torch_step = _torch_step(kind, x, k, g)
  if torch_step is not None:
    steps["PyTorch eager (oneDNN)"] = torch_step
  return steps


def time_interleaved(steps: dict, repeats: int) -> dict:
  """{name: [seconds per repetition]}; one call of each per repetition, the order rotated each time."""
  names = list(steps)
  for name in names:
    steps[name]()  # Compile and warm up.
  times = {name: [] for name in names}
  for rep in range(repeats):
    shift = rep % len(names)
    for name in names[shift:] + names[:shift]:
      start = time.perf_counter()
      steps[name]()
      times[name].append(time.perf_counter() - start)
  return times


def _ratio_text(values) -> str:
  return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def report_layer(name: str, times: dict) -> None:
  kind, size, c_in, c_out = LAYERS[name]
  work = gflop(kind, size, c_in, c_out)
  peak_flop = 2 * PEAK_SIZE**3 / 1e9
  peak = times.pop("fp32 matmul 2048^3")
  torch_times = times.get("PyTorch eager (oneDNN)")
  arrow = "->" if kind == "down" else "-> (transposed)"
  print(f"\n{name}: {c_in} {arrow} {c_out} @ {size}x{size}, {work:.2f} GFLOP; matmul peak in this run: ", end="")
  print(f"{peak_flop / statistics.median(peak):.0f} GFLOP/s")
  print(f"  {'form':<40}{'ms':>9}{'GFLOP/s':>9}{'% peak':>8}  {'time PyTorch / time form (range)':<32}")
  for form, seconds in times.items():
    percent = [100 * (work / s) / (peak_flop / p) for s, p in zip(seconds, peak)]
    vs_torch = _ratio_text([t / s for s, t in zip(seconds, torch_times)]) if torch_times else "-"
    median = statistics.median(seconds)
    print(f"  {form:<40}{1e3 * median:>9.1f}{work / median:>9.1f}{statistics.median(percent):>7.0f}%  {vs_torch}")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated subset of " + ",".join(LAYERS))
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--skip_slow", action="store_true", help="skip XLA's own transposed conv (seconds a call)")
  args = parser.parse_args()
  print(f"batch {BATCH}; forward + input gradient + kernel gradient; median of {args.repeats} interleaved calls")
  print("ratios > 1 mean faster than PyTorch; the range is over repetitions")
  totals = {}
  for name in args.layers.split(","):
    times = time_interleaved(layer_steps(name, args.skip_slow), args.repeats)
    for form, seconds in times.items():
      totals.setdefault(form, {})[name] = statistics.median(seconds)
    report_layer(name, times)
  torch_total = totals.get("PyTorch eager (oneDNN)")
  print("\nsum of the layers' median times, PyTorch's sum / the form's (over the layers each form covers):")
  for form, per_layer in totals.items():
    if form.startswith("fp32") or torch_total is None:
      continue
    ratio = sum(torch_total[n] for n in per_layer) / sum(per_layer.values())
    print(f"  {form:<40}{ratio:>6.2f}x  ({', '.join(per_layer)})")


if __name__ == "__main__":
  main()
