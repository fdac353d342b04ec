"""deploy/spark/getGpusResources.sh, Spark's GPU discovery script, with a
fake nvidia-smi on PATH (no GPU needed): its output must always be the
JSON Spark expects, exit status 0."""
import json
import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "spark",
                      "getGpusResources.sh")
BASH = shutil.which("bash")


def discover(tmp_path, nvidia_smi=None, cuda_visible=None):
    """Runs the script with PATH holding only a fake nvidia-smi (a shell
    script body) or nothing at all; returns the parsed JSON."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        fake = bindir / "nvidia-smi"
        fake.write_text("#!/bin/sh\n" + nvidia_smi)
        fake.chmod(0o755)
    env = {"PATH": str(bindir)}
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    r = subprocess.run([BASH, SCRIPT], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


@pytest.fixture(autouse=True)
def no_leftover_processes():  # overrides conftest's: no sparkps process here
    yield


def test_two_gpus(tmp_path):
    out, _ = discover(tmp_path, 'printf "0\\n1\\n"\n')
    assert out == {"name": "gpu", "addresses": ["0", "1"]}


def test_no_nvidia_smi_gives_an_empty_list(tmp_path):
    out, err = discover(tmp_path)
    assert out == {"name": "gpu", "addresses": []}
    assert "nvidia-smi not found" in err


def test_failing_nvidia_smi_gives_an_empty_list(tmp_path):
    out, err = discover(tmp_path, 'echo "NVIDIA-SMI has failed because it could not '
                                  'communicate with the NVIDIA driver."\nexit 9\n')
    assert out == {"name": "gpu", "addresses": []}
    assert "nvidia-smi failed" in err


def test_cuda_visible_devices_restricts_the_indices(tmp_path):
    four = 'printf "0\\n1\\n2\\n3\\n"\n'
    assert discover(tmp_path, four, "1,3")[0]["addresses"] == ["1", "3"]
    assert discover(tmp_path, four, "")[0]["addresses"] == []
    assert discover(tmp_path, four, "-1")[0]["addresses"] == []
    out, err = discover(tmp_path, four, "GPU-8f3a")
    assert out["addresses"] == ["0", "1", "2", "3"] and "not a list of indices" in err
