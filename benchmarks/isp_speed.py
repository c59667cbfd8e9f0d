"""SSDNet inverse-ISP inference speed on CPU: throughput per preset and per execution variant.

Measures, for each preset (``tiny``, ``small``, ``ssdnet-paper``), the throughput of
``model.predict(x)`` (mean head only, one tile) in megapixels of input RGB per second, with:

* ``fp32``           - eager float32, contiguous (NCHW) tensors: the engine's default;
* ``channels_last``  - weights and input in channels-last memory format;
* ``bf16``           - CPU autocast to bfloat16 (``tiny`` only: emulated, and so very slow, on
  CPUs without AVX512-BF16/AMX);
* ``jit``            - TorchScript (``torch.jit.trace`` + ``freeze``), when it traces;
* ``onnxruntime``    - ONNX Runtime, only when ``onnx`` and ``onnxruntime`` are installed;
* ``compile``        - ``torch.compile`` (inductor), with ``--compile`` (slow to compile);
* ``fp32-1thread``   - the default with one torch thread (what a pipeline worker uses);
* ``engine``         - the whole ``SSDNetEngine.convert`` on a larger image (tiles of 512 with
  32 overlap, numpy in and out), ``tiny`` only.

Every configuration runs in a fresh subprocess twice: with glibc's default allocator settings
and with :func:`raw_synth.inference.tune_cpu_allocator` (mmap/trim thresholds at 1 GiB). Inside a
subprocess the variants are interleaved over several rounds; the figure is the median over all
timed calls. Other processes may share the machine: the 1-minute load average is recorded at
each round. Also reported: FLOPs per megapixel (``torch.utils.flop_counter.FlopCounterMode``:
convolutions and matrix products only, elementwise work not counted) and the machine's float32
matmul rate on the same thread count, so the throughput can be read against it.

Usage::

    python benchmarks/isp_speed.py --threads 2 --repeats 5 --rounds 3 --cycles 2 \\
        --json benchmarks/isp_speed.json [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Default input side (pixels) per preset: the paper model is measured on a smaller image (slow).
SIZES = {"tiny": 512, "small": 512, "ssdnet-paper": 128}
ENGINE_SIZE = 1024
#: Compile times of the ``compile`` variant in this worker.
COMPILE_SECONDS: list[float] = []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load1() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ------------------------------------------------------------------------------------ worker side


def _timed(fn: Callable[[], Any], repeats: int, budget: float = float("inf")) -> list[tuple[float, float, int]]:
    """``(wall seconds, process CPU seconds, minor page faults)`` of up to ``repeats`` calls.

    Stops early once ``budget`` wall seconds are spent (at least one call is made).
    """
    import resource

    out = []
    began = time.perf_counter()
    for _ in range(repeats):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = time.process_time()
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        out.append((wall, time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
        if time.perf_counter() - began > budget:
            break
    return out


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.rand(size, size)
    b = torch.rand(size, size)
    a @ b
    best = statistics.median(wall for wall, _, _ in _timed(lambda: a @ b, repeats))
    return 2 * size**3 / best / 1e9


def _variants(preset: str, threads: int, with_compile: bool) -> dict[str, Callable[[], Callable[[], Any]]]:
    """Variant name -> builder returning a zero-argument callable that runs one inference."""
    import numpy as np
    import torch

    from raw_synth.models import create_model

    size = SIZES[preset]
    torch.manual_seed(0)
    base = create_model(preset).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))

    class MeanHead(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.model(t, with_sigma=False)["mu"]

    def fp32() -> Callable[[], Any]:
        return lambda: base.predict(x)

    def fp32_1thread() -> Callable[[], Any]:
        def run() -> Any:
            torch.set_num_threads(1)
            try:
                return base.predict(x)
            finally:
                torch.set_num_threads(threads)

        return run

    def channels_last() -> Callable[[], Any]:
        model = create_model(preset).eval()
        model.load_state_dict(base.state_dict())
        model = model.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        return lambda: model.predict(xc)

    def bf16() -> Callable[[], Any]:
        def run() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return base.predict(x)

        return run

    def jit() -> Callable[[], Any]:
        traced = torch.jit.freeze(torch.jit.trace(MeanHead(base).eval(), x, check_trace=False))
        return lambda: traced(x)

    def onnxruntime() -> Callable[[], Any]:
        import onnxruntime as ort  # noqa: F401  (skipped when absent)
        import tempfile

        path = Path(tempfile.mkdtemp()) / "ssdnet.onnx"
        torch.onnx.export(MeanHead(base).eval(), (x,), str(path), input_names=["x"], output_names=["mu"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        return lambda: session.run(None, feed)

    def compiled() -> Callable[[], Any]:
        fn = torch.compile(MeanHead(base).eval())
        start = time.perf_counter()
        fn(x)
        COMPILE_SECONDS.append(time.perf_counter() - start)
        return lambda: fn(x)

    def engine() -> Callable[[], Any]:
        import tempfile

        from raw_synth.checkpoint import save_model
        from raw_synth.engine import create_engine

        path = save_model(Path(tempfile.mkdtemp()) / "tiny.safetensors", base, kind="ssdnet-isp",
                          extra={"camera": {"name": "bench", "wb_gains": [2, 1, 1, 1.7],
                                            "xyz_to_cam": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}})
        eng = create_engine("ssdnet", checkpoint=path, device="cpu")
        image = np.random.default_rng(0).random((ENGINE_SIZE, ENGINE_SIZE, 3), dtype=np.float32)
        rng = np.random.default_rng(0)
        return lambda: eng.convert(image, rng)

    builders: dict[str, Callable[[], Callable[[], Any]]] = {"fp32": fp32, "channels_last": channels_last, "jit": jit}
    if preset == "tiny":  # bf16 is emulated without AVX512-BF16/AMX: measured on tiny only
        builders["bf16"] = bf16
    if threads > 1:
        builders["fp32-1thread"] = fp32_1thread
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        builders["onnxruntime"] = onnxruntime
    except ImportError:
        pass
    if with_compile and preset == "tiny":
        builders["compile"] = compiled
    if preset == "tiny":
        builders["engine"] = engine
    return builders


def worker(args: argparse.Namespace) -> None:
    import torch

    from raw_synth.inference import tune_cpu_allocator

    tuned = tune_cpu_allocator() if args.alloc == "tuned" else False
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"alloc": args.alloc, "tuned": tuned, "threads": args.threads, "presets": {},
                              "loads": [], "skipped": {}}
    result["matmul_gflops"] = matmul_gflops(args.threads)
    _apply_sizes(args.sizes)
    for preset in args.presets.split(","):
        calls: dict[str, Callable[[], Any]] = {}
        for name, build in _variants(preset, args.threads, args.compile).items():
            if args.variants and name not in args.variants.split(","):
                continue
            try:
                fn = build()
                with torch.inference_mode():
                    fn()  # warm-up (and first-call set-up)
                calls[name] = fn
            except Exception as error:  # a variant that does not work here is reported, not fatal
                result["skipped"][f"{preset}/{name}"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        times: dict[str, list[tuple[float, float, int]]] = {name: [] for name in calls}
        for _ in range(args.rounds):
            result["loads"].append(load1())
            for name, fn in calls.items():
                with torch.inference_mode():
                    measured = _timed(fn, args.repeats, args.budget)
                times[name].extend(measured)
                print(f"[{args.alloc}] {preset} {name}: {[round(m[0], 3) for m in measured]} s, "
                      f"load {load1():.2f}", file=sys.stderr, flush=True)
        result["presets"][preset] = times
    result["compile"] = COMPILE_SECONDS
    print(json.dumps(result))


# ------------------------------------------------------------------------------------ parent side


def _apply_sizes(text: str) -> None:
    """Override :data:`SIZES` from ``"tiny=512,ssdnet-paper=128"``."""
    for item in filter(None, text.split(",")):
        name, _, side = item.partition("=")
        if name not in SIZES or not side.isdigit() or int(side) % 16:
            raise SystemExit(f"--sizes: expected preset=SIDE with SIDE a multiple of 16, got {item!r}")
        SIZES[name] = int(side)


def flops_per_megapixel(preset: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from raw_synth.models import create_model

    size = 128  # every op's FLOPs grow linearly with the pixel count
    model = create_model(preset).eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.predict(torch.rand(1, 3, size, size))
    return counter.get_total_flops() / (size * size / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,small,ssdnet-paper")
    parser.add_argument("--variants", default="", help="comma-separated subset (default: all available)")
    parser.add_argument("--sizes", default="", help="input side per preset, e.g. ssdnet-paper=256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per subprocess")
    parser.add_argument("--budget", type=float, default=5.0,
                        help="wall seconds after which a variant's round stops early (slow presets)")
    parser.add_argument("--cycles", type=int, default=2, help="subprocess pairs (default, tuned allocator)")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (tiny; minutes)")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--alloc", default="default", choices=["default", "tuned"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    _apply_sizes(args.sizes)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    runs: list[dict[str, Any]] = []
    compile_log: list[str] = []
    for _ in range(args.cycles):
        for alloc in ("default", "tuned"):
            command = [sys.executable, __file__, "--worker", "--alloc", alloc, "--presets", args.presets,
                       "--threads", str(args.threads), "--sizes", args.sizes, "--repeats", str(args.repeats), "--rounds", str(args.rounds), "--budget", str(args.budget),
                       "--variants", args.variants] + (["--compile"] if args.compile else [])
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=True, cwd=REPO)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            compile_log += [f"{alloc}: {run_compile}" for run_compile in runs[-1].get("compile", [])]

    flops = {preset: flops_per_megapixel(preset) for preset in args.presets.split(",")}
    summary: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "benchmarks/isp_speed.py"] + sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "threads": args.threads,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MKL_", "MALLOC_"))},
        "loads": [load for run in runs for load in run["loads"]],
        "matmul_gflops": {alloc: statistics.median(r["matmul_gflops"] for r in runs if r["alloc"] == alloc)
                          for alloc in ("default", "tuned")},
        "flops_per_mp": flops,
        "skipped": {k: v for run in runs for k, v in run["skipped"].items()},
        "compile": compile_log,
        "mp_per_s": {},
    }
    for preset in args.presets.split(","):
        for alloc in ("default", "tuned"):
            merged: dict[str, list[list[float]]] = {}
            for run in runs:
                if run["alloc"] == alloc:
                    for name, calls in run["presets"][preset].items():
                        merged.setdefault(name, []).extend(calls)
            for name, calls in merged.items():
                side = ENGINE_SIZE if name == "engine" else SIZES[preset]
                mp = side * side / 1e6
                summary["mp_per_s"].setdefault(preset, {}).setdefault(name, {})[alloc] = {
                    "wall": mp / statistics.median(c[0] for c in calls),
                    "cpu": mp / statistics.median(c[1] for c in calls),
                    "faults": statistics.median(c[2] for c in calls),
                    "calls": len(calls),
                }
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))

    lines = [f"command: {summary['command']}", f"machine: {summary['machine']}, threads {args.threads}, "
             f"env {summary['env']}",
             f"load (1-min) during runs: min {min(summary['loads']):.2f}, median "
             f"{statistics.median(summary['loads']):.2f}, max {max(summary['loads']):.2f}",
             f"float32 matmul 2048^3: {summary['matmul_gflops']}",
             "", "| preset | input | GFLOP/MP | variant | MP/s default malloc | MP/s tuned malloc | "
             "MP per CPU-s default / tuned | page faults per call default / tuned | calls |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for preset, variants in summary["mp_per_s"].items():
        for name, rates in variants.items():
            side = ENGINE_SIZE if name == "engine" else SIZES[preset]
            d, t = rates.get("default", {}), rates.get("tuned", {})
            lines.append(f"| {preset} | {side}x{side} | {flops[preset] / 1e9:.2f} | {name} | "
                         f"{d.get('wall', float('nan')):.3f} | {t.get('wall', float('nan')):.3f} | "
                         f"{d.get('cpu', float('nan')):.3f} / {t.get('cpu', float('nan')):.3f} | "
                         f"{d.get('faults', float('nan')):.0f} / {t.get('faults', float('nan')):.0f} | "
                         f"{d.get('calls', 0)} / {t.get('calls', 0)} |")
    if summary["skipped"]:
        lines += ["", "skipped: " + json.dumps(summary["skipped"])]
    if compile_log:
        lines += ["compile: " + "; ".join(compile_log)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
