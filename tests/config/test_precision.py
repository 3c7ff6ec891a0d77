"""``amp: auto`` picks bf16 only where the CPU computes it natively; an explicit bf16 elsewhere warns."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mta4dpr_core.config import precision
from mta4dpr_core.config.params import ParamsError, load_params, profile_path

FORCED_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PROBE = (
    "import json, warnings, torch; from mta4dpr_core.config import precision as p; warnings.simplefilter('always')\n"
    "with warnings.catch_warnings(record=True) as w:\n"
    "    p.autocast_dtype('bf16', torch.device('cpu'))\n"
    "print(json.dumps({**p.describe(), 'warned': [str(x.message) for x in w]}))"
)


def _probe(extra_env):
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **extra_env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_forced_avx2_is_treated_as_a_cpu_without_bf16():
    described = _probe(FORCED_AVX2)
    assert described["cpu_capability"] == "AVX2"
    assert described["native_bf16"] is False and described["auto"] == "float32"
    assert described["warned"] and "emulated" in described["warned"][0] and "auto" in described["warned"][0]


def test_native_capability_agrees_with_the_cpu_flags():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    described = _probe({})
    # a suite run with the capability forced down (make test under ONEDNN_MAX_CPU_ISA=AVX2) has no native bf16
    forced_down = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ("SSE41", "AVX", "AVX2", "AVX2_VNNI")
    has_bf16 = (" avx512_bf16" in flags or " amx_bf16" in flags) and not forced_down
    assert described["native_bf16"] == has_bf16
    assert described["auto"] == ("bfloat16" if has_bf16 else "float32")
    assert bool(described["warned"]) == (not has_bf16)


def test_settings():
    cpu = torch.device("cpu")
    assert precision.autocast_dtype("off", cpu) is None
    assert precision.autocast_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ValueError, match="training.amp"):
        precision.autocast_dtype("float32", cpu)


def test_profiles_that_compare_across_cpus_pin_float32():
    """smoke and mini tables are compared across machines: their training must not depend on bf16 support."""
    for name in ("smoke", "mini"):
        assert load_params(profile_path(name))["training"]["amp"] == "off"
    assert load_params(profile_path("mini_transformer"))["training"]["amp"] == "auto"


def test_a_bare_yaml_off_gets_a_hint(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(profile_path("smoke").read_text().replace('amp: "off"', "amp: off"))
    with pytest.raises(ParamsError, match="quote it"):
        load_params(profile)
