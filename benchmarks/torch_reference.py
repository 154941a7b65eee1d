"""The same DVAE/DAAE train step in eager PyTorch, for benchmarks/train_step.py (needs the `bench` extra).

Same architecture as dae_jax's paper config: 4x4 stride-2 convs 64-128-256-512 with BatchNorm + ReLU (no bias
before BatchNorm), dense to the code, a mirrored fractionally-strided decoder returning logits, BCE summed over
pixels, Adam(2e-4, 0.5, 0.999); for DAAE a 1000-1000 leaky-ReLU/dropout latent discriminator updated in the
same step.
``compiled=True`` wraps each network in ``torch.compile`` (the optimizers stay eager).
"""

import torch
from torch import nn
import torch.nn.functional as F

WIDTHS = (64, 128, 256, 512)
LATENT = 100


def _encoder(out_features):
  layers, channels = [], 3
  for width in WIDTHS:
    layers += [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    channels = width
  return nn.Sequential(*layers, nn.Flatten(), nn.Linear(WIDTHS[-1] * 16, out_features))


def _decoder():
  widths = tuple(reversed(WIDTHS))
  layers = [
    nn.Linear(LATENT, widths[0] * 16, bias=False),
    nn.Unflatten(1, (widths[0], 4, 4)),
    nn.BatchNorm2d(widths[0]),  # Per channel on the 4x4 map, as DCGAN and dae_jax's decoder do.
    nn.ReLU(),
  ]
  for c_in, c_out in zip(widths, widths[1:]):
    layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
  return nn.Sequential(*layers, nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1))


def _discriminator():
  return nn.Sequential(
    nn.Linear(LATENT, 1000),
    nn.LeakyReLU(0.2),
    nn.Dropout(0.2),
    nn.Linear(1000, 1000),
    nn.LeakyReLU(0.2),
    nn.Dropout(0.2),
    nn.Linear(1000, 1),
  )


def _adam(parameters):
  return torch.optim.Adam(parameters, lr=2e-4, betas=(0.5, 0.999))


class TorchStep:
  """Calling it runs one full training step on a fixed random batch."""

  def __init__(self, objective: str, batch: int, compiled: bool = False):
    torch.manual_seed(0)
    self.objective = objective
    self.encoder = _encoder(2 * LATENT if objective == "dvae" else LATENT)
    self.decoder = _decoder()
    self.ae_opt = _adam(list(self.encoder.parameters()) + list(self.decoder.parameters()))
    if objective == "daae":
      self.disc = _discriminator()
      self.disc_opt = _adam(self.disc.parameters())
    if compiled:  # The optimizers hold the parameters themselves, so wrapping after building them is safe.
      self.encoder, self.decoder = torch.compile(self.encoder), torch.compile(self.decoder)
      if objective == "daae":
        self.disc = torch.compile(self.disc)
    self.x = torch.rand(batch, 3, 64, 64)

  def __call__(self):
    noisy = self.x + 0.5 * torch.randn_like(self.x)
    h = self.encoder(noisy)
    regulariser = torch.zeros(())
    if self.objective == "dvae":
      mean, log_var = h.chunk(2, dim=1)
      z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
      regulariser = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1).mean()
    else:
      z = h
    if self.objective == "daae":
      fake = self.disc(z)
      regulariser = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    logits = self.decoder(z)
    reconstruction = F.binary_cross_entropy_with_logits(logits, self.x, reduction="sum") / self.x.shape[0]
    self.ae_opt.zero_grad()
    (reconstruction + regulariser).backward()
    self.ae_opt.step()
    if self.objective == "daae":
      prior = torch.randn_like(z)
      real, fake = self.disc(prior), self.disc(z.detach())
      disc_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
      )
      self.disc_opt.zero_grad()
      disc_loss.backward()
      self.disc_opt.step()
