"""Fixtures only the control-plane tests use; the shared ones are in tests/kube/fixtures.py."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def testchart() -> Path:
    """A small chart (ConfigMap, Deployment, Service) with a kubeVersion constraint."""
    return Path(__file__).parent / "testchart"
