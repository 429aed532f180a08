"""Full-size architecture checks (random weights, published configs): each loads through the user's code and
takes one step in its own process. Minutes and up to ~9 GB of memory each; run them with

    HF_HUB_OFFLINE=1 python -m pytest -m fullsize tests/fullsize -s

(``LLMGA_FULLSIZE_ROOT`` keeps the written models between runs; by default they are deleted afterwards.)
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmga.testing.fullsize import CHECKS, PUBLISHED

pytestmark = pytest.mark.fullsize


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    kept = os.environ.get("LLMGA_FULLSIZE_ROOT")
    path = Path(kept) if kept else tmp_path_factory.mktemp("fullsize")
    yield path
    if not kept:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("name", CHECKS)
def test_full_size_model_loads_and_steps(root, name):
    done = subprocess.run([sys.executable, "-m", "llmga.testing.fullsize", "--root", str(root), "--one", name],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report))
    for key, published in PUBLISHED.items():
        family, part = key.split("/")
        if family == name and part in report.get("params", {}):
            assert abs(report["params"][part] - published) / published < 0.002, (key, report["params"][part])
    if name == "llava-7b":
        assert 7.0e9 < report["params"] < 7.1e9 and report["decode_tokens_per_s_32_layers_extrapolated"] > 0
    else:
        assert report["step_s"] > 0
    assert report["peak_rss_gb"] < 10
