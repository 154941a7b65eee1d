"""dae_jax: denoising autoencoders trained with binary cross-entropy, and sampling by iterating them.

Implements Creswell, Arulkumaran & Bharath (2017), "On denoising autoencoders trained to minimise binary
cross-entropy". The programmatic entry points are ``dae_jax.sampling.make_sample_chain`` and
``dae_jax.train.train_and_evaluate``.
"""

__version__ = "0.1.0"
