"""sha256 of 16 pages at once (native/pageserver/sha256x16.c): the same digests as
OpenSSL, for every batch size, on random, zero and all-ones pages."""

from __future__ import annotations

import pytest

from tests.conftest import require
from tests.native.fault_driver import build_driver, run_driver

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def driver(native_build, tmp_path_factory):
    return build_driver(native_build, tmp_path_factory.mktemp("driver"))


@pytest.mark.parametrize("seed", [1, 0x5EED, 2**63 + 12345])
def test_sixteen_lanes_agree_with_openssl(driver, seed):
    out = " ".join(run_driver(driver, "-", "sha", seed, 4))
    require(out != "unavailable", "sha256x16 needs AVX-512 (F, BW)")
    assert out == f"ok {4 * sum(range(1, 17))}"
