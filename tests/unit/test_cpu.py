"""functions.cpu: the int8 kernel family from /proc/cpuinfo, and the cold-start warning."""

from __future__ import annotations

import pytest

from functions.cpu import cpu_flags, int8_family_warning, int8_kernel_family

X86_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC 7R32\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
X86_VNNI = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"
X86_AVX_VNNI = "flags\t: avx2 avx_vnni\n"
GRAVITON = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes crc32 asimddot i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "family"),
    [
        (X86_AVX2, "avx2"),
        (X86_VNNI, "avx512_vnni"),
        (X86_AVX_VNNI, "avx_vnni"),
        (GRAVITON, "asimddot"),
        ("processor\t: 0\n", "unknown"),
    ],
)
def test_family_from_cpuinfo(cpuinfo, family):
    assert int8_kernel_family(cpu_flags(cpuinfo)) == family


def test_flags_are_read_from_the_first_flags_line():
    assert {"avx2", "fma"} <= cpu_flags(X86_AVX2)
    assert "asimddot" in cpu_flags(GRAVITON)
    assert cpu_flags("") == frozenset()


def test_no_warning_when_the_families_match_or_nothing_was_recorded():
    assert int8_family_warning("avx2", "avx2") is None
    assert int8_family_warning("", "asimddot") is None


def test_warning_names_both_families_and_the_saturating_side():
    trained_on_vnni = int8_family_warning("avx512_vnni", "avx2", machine="x86_64")
    assert "avx512_vnni" in trained_on_vnni and "avx2" in trained_on_vnni
    assert "can saturate" in trained_on_vnni
    trained_on_avx2 = int8_family_warning("avx2", "asimddot", machine="aarch64")
    assert "aarch64" in trained_on_avx2 and "these cannot" in trained_on_avx2
    assert "saturate" not in int8_family_warning("avx512_vnni", "asimddot")
