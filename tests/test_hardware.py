from adaptune.hardware import probe as hardware


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(
        f"processor\t: 0\nmodel name\t: AMD EPYC test\nflags\t\t: {' '.join(flags)}\n\n"
        "processor\t: 1\n"
    )
    return path


def test_cpu_flags_and_name_are_read_from_cpuinfo(tmp_path):
    cpuinfo = _cpuinfo(tmp_path, ["sse2", "avx512_bf16"])
    assert hardware.cpu_flags(cpuinfo) == {"sse2", "avx512_bf16"}
    assert hardware.cpu_name(cpuinfo) == "AMD EPYC test"
    assert hardware.cpu_flags(tmp_path / "absent") == set()
    assert hardware.cpu_name(tmp_path / "absent")  # the platform's word for it, never empty
