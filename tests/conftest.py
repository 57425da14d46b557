import shutil

import pytest
import torch

import pyrl

# CUDA parametrisations run only where a GPU is present and pyrl was built with CUDA kernels.
HAS_CUDA = torch.cuda.is_available() and pyrl.build_info()["cuda"]


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)])
def device(request):
    return request.param


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a GPU and pyrl built with CUDA kernels")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sample_opchecks():
    """opcheck's utilities for the sample ops: torch's auto_functionalize does not yet support a
    mutating op (these advance the state's draw counter) that returns Tensor[], so
    test_aot_dispatch_dynamic cannot trace them."""
    return ("test_schema", "test_autograd_registration", "test_faketensor")


@pytest.fixture
def compile_backend():
    """torch.compile's backend for the fullgraph tests: inductor, which needs a C++ compiler;
    where there is none (a user's machine with the installed wheel) aot_eager, which still traces
    the whole graph through the ops' fake kernels."""
    return "inductor" if shutil.which("g++") or shutil.which("c++") else "aot_eager"
