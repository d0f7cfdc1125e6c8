"""Fixtures shared by the tests beside the code."""

import pytest
import torch

import fastlic


@pytest.fixture(scope="module")
def tiny():
    """A randomly initialized tiny MLIC++ in eval mode with its coding tables built (seed 0)."""
    torch.manual_seed(0)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.update()
    return m
