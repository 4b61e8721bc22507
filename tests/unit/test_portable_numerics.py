"""Same command, same table on another machine: utils/path.sh pins the CPU kernels to AVX2, so a
training computes the same floats on every x86-64 machine with AVX2, with or without AVX-512.

The probe is a small conv net trained 50 Adam steps; its final loss under path.sh is compared to
the value measured on an AVX2 path (torch 2.11.0 as pinned in setup.py). Without the pin, an
AVX-512 CPU takes oneDNN's AVX-512 kernels and ends at another loss (asserted where the CPU has
AVX-512: that is the difference the pin removes)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

PROBE = """
import torch
torch.manual_seed(0); torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv1d(1, 16, 9, padding=4), torch.nn.ReLU(), torch.nn.Conv1d(16, 1, 9, padding=4))
opt = torch.optim.Adam(net.parameters(), 1e-3)
x = torch.randn(8, 1, 4000); y = torch.tanh(x)
for _ in range(50):
    opt.zero_grad(); loss = ((net(x) - y) ** 2).mean(); loss.backward(); opt.step()
print(torch.backends.cpu.get_cpu_capability(), repr(loss.item()))
"""
AVX2_LOSS = "0.047046154737472534"


def probe(native: bool) -> tuple[str, str]:
    setting = "SPEECHLIB_NATIVE_ISA=1" if native else "SPEECHLIB_NATIVE_ISA=0"
    env_clear = "unset ONEDNN_MAX_CPU_ISA MKL_CBWR ATEN_CPU_CAPABILITY"
    out = subprocess.run(["bash", "-c", f"{env_clear}; export {setting}; . utils/path.sh && python -c '{PROBE}'"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    capability, loss = out.stdout.split()
    return capability, loss


def cpu_has_avx512() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " avx512f" in flags


def test_path_sh_pins_the_kernels_to_avx2():
    capability, loss = probe(native=False)
    assert capability == "AVX2"
    assert loss == AVX2_LOSS


@pytest.mark.skipif(not cpu_has_avx512(), reason="only an AVX-512 CPU has another kernel path to differ on")
def test_native_avx512_kernels_give_other_floats():
    capability, loss = probe(native=True)
    assert capability == "AVX512" and loss != AVX2_LOSS
