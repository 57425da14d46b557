import importlib

import pytest
import torch

import pyrl
from pyrl import _loader


def test_build_info_reports_the_build():
    info = pyrl.build_info()
    assert info["torch_version"] == torch.__version__
    assert isinstance(info["openmp"], bool)
    assert info["threads"] >= 1
    assert info["cpu_isa"] in ("avx2", "baseline")
    assert isinstance(info["cuda"], bool)
    assert "GNU" in info["compiler"] or "Clang" in info["compiler"]


def test_ops_are_registered():
    for name in ("gae", "discounted_return", "lambda_return", "nstep_return", "nstep_gae"):
        assert hasattr(torch.ops.pyrl, name)


def test_another_torch_is_refused_with_rebuild_instructions(monkeypatch):
    config = importlib.import_module("pyrl._build_config")
    monkeypatch.setattr(config, "TORCH_VERSION", "0.0.1")
    with pytest.raises(ImportError, match=r"compiled against torch 0\.0\.1.*\n.*Rebuild"):
        _loader.load_extension()
