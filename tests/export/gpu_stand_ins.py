"""Stand-ins for ``trtexec`` and ``nvidia-smi`` (no GPU or TensorRT on these machines).

The ``trtexec`` stand-in prints the banner the real one prints, writes a "plan" derived from the
ONNX bytes and the shapes it was asked for to ``--saveEngine``, and appends its arguments to a log,
so tests can tell which plans were built and with which profile. ``STANDIN_TRT`` sets the TensorRT
number it reports (default 100500 = 10.5.0), ``STANDIN_GPU`` what ``nvidia-smi`` lists.
"""

from __future__ import annotations

import sys
from pathlib import Path

TRTEXEC = """#!{python}
import hashlib, os, sys
number = os.environ.get("STANDIN_TRT", "100500")
print(f"&&&& RUNNING TensorRT.trtexec [TensorRT v{{number}}] # trtexec " + " ".join(sys.argv[1:]), flush=True)
if sys.argv[1:] == ["--version"]:
    sys.exit(0)
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
if os.environ.get("STANDIN_TRT_FAIL"):
    print("[E] [TRT] ModelImporter.cpp:949: ERROR: unsupported node", flush=True)
    sys.exit(1)
digest = hashlib.sha256(open(args["onnx"], "rb").read()).hexdigest()
print("[I] Engine built in 0.1 sec.", flush=True)
with open(args["saveEngine"], "wb") as plan:
    plan.write(f"plan {{number}} {{digest}} {{args['minShapes']}} {{args['maxShapes']}}".encode())
print(f"&&&& PASSED TensorRT.trtexec [TensorRT v{{number}}]", flush=True)
"""

NVIDIA_SMI = """#!/bin/sh
echo "${STANDIN_GPU:-NVIDIA H100 80GB HBM3, 9.0}"
"""


def install(bin_dir: Path) -> Path:
    """Write ``trtexec`` and ``nvidia-smi`` into ``bin_dir``; returns the trtexec call log's path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "trtexec.calls"
    (bin_dir / "trtexec").write_text(TRTEXEC.format(python=sys.executable, log=str(log)))
    (bin_dir / "nvidia-smi").write_text(NVIDIA_SMI)
    for tool in ("trtexec", "nvidia-smi"):
        (bin_dir / tool).chmod(0o755)
    return log


def calls(log: Path) -> list[str]:
    """The argument lines trtexec was built with (``--version`` queries excluded)."""
    return log.read_text().splitlines() if log.exists() else []
