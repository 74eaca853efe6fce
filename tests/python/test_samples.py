"""Every Python sample runs once against cairn and exits 0."""

import os
import pathlib
import subprocess
import sys

import pytest

SAMPLES = sorted((pathlib.Path(__file__).parents[2] / "samples" / "python").glob("*.py"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_runs(cairn_server, sample: pathlib.Path) -> None:
    r = subprocess.run([sys.executable, str(sample), cairn_server.endpoint], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout


def test_samples_exist() -> None:
    assert {s.name for s in SAMPLES} >= {"lock.py", "election.py", "watch.py", "discovery.py",
                                         "asyncio_example.py"}
