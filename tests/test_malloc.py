"""tune_malloc: memory freed by one training step is reused by the next, not faulted in anew."""

import os
import subprocess
import sys

import pytest

from calgan_sklearn._malloc import _glibc
from calgan_sklearn.cli import TRAINING_COMMANDS

pytestmark = pytest.mark.skipif(_glibc() is None, reason="tune_malloc changes glibc's malloc only")

# Allocates and frees a 64 MB block 20 times, as a training step does with its largest
# tensors, and prints tune_malloc's answer and the page faults per round.
LOOP = """
import resource
import numpy as np
import calgan_sklearn

applied = calgan_sklearn.tune_malloc()
again = calgan_sklearn.tune_malloc()
np.ones(1 << 23).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(1 << 23)  # 64 MB, every page written
    del block
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(applied, again, (after - before) / 20)
"""


def _clean_env():
    """This process's environment without the suite's CALGAN_MALLOC or a preloaded allocator."""
    return {k: v for k, v in os.environ.items() if k not in ("CALGAN_MALLOC", "LD_PRELOAD")}


def _run(env_malloc):
    env = _clean_env()
    if env_malloc is not None:
        env["CALGAN_MALLOC"] = env_malloc
    out = subprocess.run(
        [sys.executable, "-c", LOOP], env=env, capture_output=True, text=True, check=True
    )
    applied, again, faults = out.stdout.split()
    return applied == "True", again == "True", float(faults)


def test_freed_blocks_are_reused_without_page_faults():
    applied, again, tuned = _run(None)
    assert applied and not again  # applied once; a second call does nothing
    skipped, _, default = _run("system")
    assert not skipped  # CALGAN_MALLOC=system leaves glibc at its defaults
    # Under the defaults a 64 MB block is mapped afresh each round and faults again
    # (16,384 pages of 4 KB, fewer where huge pages are used); tuned, it is reused.
    assert default >= 16, f"the default allocator faulted only {default} times a round"
    assert tuned <= default / 10, f"{tuned} faults a round tuned, {default} by default"


@pytest.mark.parametrize("command", ["fit", "info"])
def test_training_commands_tune_malloc_and_others_do_not(command, tmp_path):
    env = _clean_env()
    # The command stops at its check of the missing input, after the tuning.
    args = ["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]
    out = subprocess.run(
        [sys.executable, "-m", "calgan_sklearn.cli", "-v", command]
        + (args if command == "fit" else [str(tmp_path / "nowhere")]),
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert "nowhere" in out.stderr
    tuned = "glibc malloc tuned" in out.stderr
    assert tuned == (command in TRAINING_COMMANDS)
