import pytest
import torch

from adaptune import hardware


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {' '.join(flags)}\n\nprocessor\t: 1\n")
    return path


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    assert hardware.cpu_flags(_cpuinfo(tmp_path, ["sse2", "avx512_bf16"])) == {"sse2", "avx512_bf16"}
    assert hardware.cpu_flags(tmp_path / "absent") == set()


@pytest.mark.parametrize("flags, expected", [
    (["sse2", "avx2"], False), (["avx512f", "avx512_bf16"], True), (["amx_bf16", "amx_tile"], True),
])
def test_bf16_cpu_support_follows_the_flags(tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert hardware.cpu_has_bf16_instructions(_cpuinfo(tmp_path, flags)) is expected


def test_auto_resolves_to_bf16_mixed_only_where_the_cpu_computes_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: True)
    assert hardware.resolve_precision("auto") == "bf16-mixed"
    monkeypatch.setattr(hardware, "cpu_supports_bf16", lambda: False)
    assert hardware.resolve_precision("auto") == "32-true"
    assert hardware.resolve_precision("bf16-true") == "bf16-true"  # explicit values are kept


def test_autocast_dtype_of_each_precision():
    assert hardware.autocast_dtype("bf16-mixed") is torch.bfloat16
    assert hardware.autocast_dtype("16-mixed") is torch.float16
    assert hardware.autocast_dtype("32-true") is None


def test_bf16_flags_without_faster_matmuls_mean_fp32(tmp_path, monkeypatch):
    """The flags are necessary, not enough: a CPU whose bf16 matmuls measure slower trains in fp32."""
    from adaptune import acceleration

    cpuinfo = _cpuinfo(tmp_path, ["avx512f", "avx512_bf16"])
    monkeypatch.setattr(acceleration, "bf16_matmul_pays", lambda device="cpu": False)
    assert hardware.cpu_supports_bf16(cpuinfo) is False
    monkeypatch.setattr(acceleration, "bf16_matmul_pays", lambda device="cpu": True)
    assert hardware.cpu_supports_bf16(cpuinfo) is True
    assert hardware.cpu_supports_bf16(_cpuinfo(tmp_path, ["sse2", "avx2"])) is False
