"""The process's memory: its peak and current size, and release() between stages."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from synthetic import memory


def test_peak_and_current_memory_are_this_processes():
    before = memory.peak_mb()
    big = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    assert memory.current_mb() >= 64 and memory.peak_mb() >= max(before, memory.current_mb()) - 1
    del big


def test_release_drops_compiled_programs_and_keeps_arrays():
    double = jax.jit(lambda x: x * 2)
    kept = double(jnp.arange(3.0))
    assert double._cache_size() == 1
    memory.release()
    assert double._cache_size() == 0
    np.testing.assert_array_equal(kept, [0.0, 2.0, 4.0])  # arrays are untouched
    np.testing.assert_array_equal(double(jnp.arange(3.0)), [0.0, 2.0, 4.0])  # and programs compile again


def test_the_peak_can_be_reset_to_measure_one_stage():
    big = np.ones(128 * 2**20 // 8)  # 128 MB, touched
    del big
    high = memory.peak_mb()
    if not memory.reset_peak():
        pytest.skip("the peak cannot be reset here (no /proc/self/clear_refs)")
    after = memory.peak_mb()
    assert after < high - 100  # the 128 MB freed no longer count
    stage = np.ones(64 * 2**20 // 8)
    assert memory.peak_mb() >= after + 60  # the stage's own 64 MB do
    del stage
