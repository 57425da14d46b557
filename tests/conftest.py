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
