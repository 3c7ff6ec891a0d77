"""Copy a Hugging Face model directory with its safetensors weights cast to another float dtype.

    python tools/model_precision.py SRC DST --dtype float16   # half the bytes (e.g. to ship it)
    python tools/model_precision.py SRC DST --dtype float32   # back to float32 for training

float16 keeps 11 significant bits (relative error <= 2^-11); a float32 model that went through
float16 and back is *a slightly different model*: compare runs only when both sides start from the
same round trip (tools/gpu_check.sh does).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], required=True)
    args = parser.parse_args(argv)

    import torch
    from safetensors.torch import load_file, save_file

    source, target = Path(args.source), Path(args.target)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns("*.safetensors", ".git*", "README.md"))
    dtype = getattr(torch, args.dtype)
    for weights in sorted(source.glob("*.safetensors")):
        tensors = load_file(str(weights))
        save_file(
            {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
            str(staging / weights.name),
            metadata={"format": "pt"},
        )
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    print(f"{source} -> {target} ({args.dtype})")


if __name__ == "__main__":
    main()
