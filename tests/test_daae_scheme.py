"""The DAAE's training schemes: the joint loss (the default) and the AAE's separate phases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae_jax import experiment, models, train_step
from dae_jax.data import faces


def _one_step(config):
  config.train.num_devices = 1
  run = experiment.build(config)
  images = jnp.asarray(faces.load(config.data.image_size, config.data.channels)[: config.train.batch_size])
  state = experiment.initial_state(run, images)
  new_state, metrics = jax.jit(lambda s, b, k: train_step.train_step(s, b, k, spec=run.spec))(
    state, images, run.step_key
  )
  return state, new_state, metrics


def test_the_phases_scheme_moves_the_decoder_by_the_reconstruction_alone(tiny_config):
  """The regularisation phase touches only the encoder: the decoder ends where a joint step with no adversarial
  term leaves it."""
  _, phases, metrics = _one_step(tiny_config("daae", loss__adversarial_scheme="phases"))
  _, joint, _ = _one_step(tiny_config("daae", loss__adversarial_scheme="joint", loss__adversarial_weight=0.0))
  jax.tree.map(np.testing.assert_array_equal, phases.ae_params["decoder"], joint.ae_params["decoder"])
  assert {"reconstruction", "adversarial", "discriminator", "loss"} == set(metrics)
  assert float(metrics["loss"]) == float(metrics["reconstruction"])


def test_the_encoders_adversarial_step_does_not_shrink_with_the_reconstruction_loss(tiny_config):
  """Adam's first step moves each parameter by the learning rate whatever its gradient's size, so the encoder's
  adversarial update is lr per weight even though the summed BCE is ~1000x the adversarial loss."""
  lr = 2e-4
  config = {"optim__learning_rate": lr}
  _, phases, _ = _one_step(tiny_config("daae", loss__adversarial_scheme="phases", **config))
  _, joint, _ = _one_step(tiny_config("daae", loss__adversarial_scheme="joint", loss__adversarial_weight=0.0, **config))
  moves = np.concatenate(
    [
      np.abs(a - b).ravel()
      for a, b in zip(jax.tree.leaves(phases.ae_params["encoder"]), jax.tree.leaves(joint.ae_params["encoder"]))
    ]
  )
  moved = moves[moves > 0]
  assert len(moved) > 0.5 * len(moves)
  np.testing.assert_allclose(np.median(moved), lr, rtol=1e-2)
  assert int(phases.gen_opt_state[0].count) == 1


def test_the_joint_scheme_keeps_no_second_optimiser_state(tiny_config):
  _, joint, metrics = _one_step(tiny_config("daae", loss__adversarial_scheme="joint"))
  assert joint.gen_opt_state is None
  assert float(metrics["loss"]) > float(metrics["reconstruction"])


@pytest.mark.parametrize("objective", ["dae", "dvae"])
def test_objectives_without_a_discriminator_keep_no_second_optimiser_state(tiny_config, objective):
  _, state, _ = _one_step(tiny_config(objective))
  assert state.gen_opt_state is None and state.disc_params is None


def test_disc_steps_updates_the_discriminator_that_many_times(tiny_config):
  _, state, _ = _one_step(tiny_config("daae", train__disc_steps=3))
  assert int(state.disc_opt_state[0].count) == 3
  assert int(state.ae_opt_state[0].count) == 1


def test_the_gradient_penalty_of_a_linear_discriminator_is_half_its_squared_weight_norm(tiny_config):
  """For D(z) = w.z + b the gradient at every z is w, so R1 adds gamma/2 ||w||^2 to the loss."""
  config = tiny_config("daae")
  run = experiment.build(config)
  linear = models.LatentDiscriminator(hidden=(), dropout=0.0, leaky_relu_slope=0.2)
  gamma = 3.0
  spec = run.spec.__class__(**{**run.spec.__dict__, "discriminator": linear, "disc_gradient_penalty": gamma})
  plain = run.spec.__class__(**{**run.spec.__dict__, "discriminator": linear})
  prior, codes = jax.random.normal(jax.random.key(0), (2, 16, config.model.latent_dim))
  params = linear.init(jax.random.key(1), prior, deterministic=True)["params"]
  key = jax.random.key(2)
  penalty = train_step._discriminator_loss(params, spec, prior, codes, key) - train_step._discriminator_loss(
    params, plain, prior, codes, key
  )
  np.testing.assert_allclose(float(penalty), gamma / 2 * float(jnp.sum(params["Dense_0"]["kernel"] ** 2)), rtol=1e-5)
