"""train.profile_steps: a jax.profiler trace of that many steps after the first dispatch, in <workdir>/profile/."""

import jax
import jax.numpy as jnp
import pytest

from dae_jax import train


def _traces(workdir) -> list:
  return sorted((workdir / "profile").glob("plugins/profile/*/*.xplane.pb"))


def _assert_no_trace_running(directory) -> None:
  # jax.profiler refuses a second trace while one runs, so this fails if _Trace left its trace open.
  jax.profiler.start_trace(str(directory))
  jax.profiler.stop_trace()


def test_the_trace_starts_after_the_first_dispatch_and_stops_after_profile_steps(tmp_path, caplog):
  state = jnp.ones(3)
  with caplog.at_level("INFO"), train._Trace(str(tmp_path), 2) as trace:
    for done in (1, 2):
      trace.after_dispatch(done, state)
      state = state * 2
    assert not _traces(tmp_path)  # Running: written only when it stops.
    trace.after_dispatch(3, state)  # Steps 2 and 3 traced.
    assert len(_traces(tmp_path)) == 1
    trace.after_dispatch(4, state)  # Nothing more.
  assert "Wrote a profile of steps 2-3 to " in caplog.text
  assert len(_traces(tmp_path)) == 1
  assert list((tmp_path / "profile").glob("plugins/profile/*/*.trace.json.gz"))  # For ui.perfetto.dev.
  _assert_no_trace_running(tmp_path / "other")


def test_a_run_that_ends_or_fails_inside_the_traced_steps_still_writes_the_trace(tmp_path, caplog):
  failing = pytest.raises(RuntimeError, match="the step failed")
  with caplog.at_level("INFO"), failing, train._Trace(str(tmp_path), 10) as trace:
    trace.after_dispatch(4, jnp.ones(3))  # After a first dispatch of 4 steps (train.steps_per_call=4).
    trace.after_dispatch(8, jnp.ones(3))
    raise RuntimeError("the step failed")
  assert "Wrote a profile of steps 5-its end to " in caplog.text
  assert len(_traces(tmp_path)) == 1
  _assert_no_trace_running(tmp_path / "other")


def test_profile_steps_0_traces_nothing(tmp_path):
  with train._Trace(str(tmp_path), 0) as trace:
    for done in (1, 2, 3):
      trace.after_dispatch(done, jnp.ones(3))
  assert not (tmp_path / "profile").exists()
  _assert_no_trace_running(tmp_path / "other")


@pytest.mark.parametrize("profile_steps", [2, 0])
def test_a_training_run_writes_a_trace_only_when_asked(tiny_config, tmp_path, profile_steps):
  config = tiny_config("dae", train__num_steps=4, train__figures_every_steps=4, train__profile_steps=profile_steps)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 4
  if profile_steps:
    assert len(_traces(tmp_path)) == 1
  else:
    assert not (tmp_path / "profile").exists()
  _assert_no_trace_running(tmp_path / "other")
