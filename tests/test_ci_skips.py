"""Under CI (the `CI` variable set) a skip fails the run unless its reason names a declared
optional component (a GPU, the llama.cpp server); without CI skips stay skips."""

import pytest

from ci_skips import ci_enabled, optional_component

TESTS = """
import pytest

def test_runs():
    pass

def test_needs_a_gpu():
    pytest.skip("no CUDA GPU on this machine")

@pytest.mark.skipif(True, reason="llama-cpp-python[server] is not importable")
def test_needs_the_llama_server():
    pass

@pytest.mark.skipif(True, reason="labeled_data.csv not placed in data/")
def test_needs_the_dataset():
    pass

def test_skips_inside():
    pytest.skip("the package index is out of reach")

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""


@pytest.fixture
def project(pytester):
    pytester.makeconftest("from ci_skips import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(test_cases=TESTS)
    return pytester


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_under_ci_only_the_optional_components_may_skip(project, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = project.runpytest_inprocess("-rA")
    result.assert_outcomes(passed=1, skipped=2, failed=1, errors=1, xfailed=1)
    output = result.stdout.str()
    assert "ERROR test_cases.py::test_needs_the_dataset" in output  # a skipif fails in setup
    assert "FAILED test_cases.py::test_skips_inside" in output
    assert (
        "names no declared optional component" in output
        and "the package index is out of reach" in output
    )


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_without_ci_skips_stay_skips(project, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    project.runpytest_inprocess().assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_the_declared_components_are_recognised_by_name():
    assert optional_component("needs a GPU") == "GPU"
    assert optional_component("torch.cuda is not available (CUDA)") == "GPU"
    assert optional_component("llama.cpp server missing") == "the llama.cpp server"
    assert optional_component("no GPUs here") == "GPU"
    assert optional_component("gpupy missing") is None
    assert optional_component("network down") is None
    assert ci_enabled({"CI": "true"}) and not ci_enabled({}) and not ci_enabled({"CI": "false"})
