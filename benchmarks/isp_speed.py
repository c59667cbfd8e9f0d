"""SSDNet inverse-ISP inference speed on CPU: throughput per preset and per execution variant.

Measures, for each preset (``tiny``, ``small``, ``ssdnet-paper``), the throughput of
``model.predict(x)`` (mean head only, one tile) in megapixels of input RGB per second, with:

* ``fp32``           - eager float32, contiguous (NCHW) tensors: the engine's default;
* ``fp32-1thread``   - the same on one torch thread (what a pipeline worker uses);
* ``fp32-passive``   - the same with ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead
  of spinning at barriers; matters when other processes load the machine);
* ``channels_last``  - weights and input in channels-last memory format;
* ``bf16``           - CPU autocast to bfloat16 (``tiny`` only: emulated, and so very slow, on
  CPUs without AVX512-BF16/AMX);
* ``jit``            - TorchScript (``torch.jit.trace`` + ``freeze``);
* ``onnxruntime``    - ONNX Runtime, only when ``onnx`` and ``onnxruntime`` are installed;
* ``compile``        - ``torch.compile`` (inductor), with ``--compile`` (``tiny``; minutes to compile);
* ``engine``         - the whole ``SSDNetEngine.convert`` of a 1024x1024 image (default tiles of
  512 with 32 overlap, numpy in and out), ``tiny`` only.

Each (preset, variant, allocator) is measured in a fresh subprocess - one warm-up call, then up
to ``--repeats`` timed calls - once with glibc's default allocator settings and once after
:func:`raw_synth.inference.tune_cpu_allocator` (mmap/trim thresholds at 1 GiB). All of them are
repeated ``--cycles`` times in interleaved order; a figure is the median over all timed calls.
Besides wall time, each call's process CPU time and minor page faults are recorded: on a machine
that other processes load, CPU time is the steadier measure for one thread.
The 1-minute load average is recorded at each call.

Also reported: FLOPs per megapixel (``torch.utils.flop_counter.FlopCounterMode``: convolutions
and matrix products; elementwise work is not counted) and the machine's float32 matmul rate
(2048^3) on the same thread count, to read the throughput against.

Usage::

    python benchmarks/isp_speed.py --threads 2 --cycles 3 --json benchmarks/isp_speed.json [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Default input side (pixels) per preset: the larger models are measured on smaller images.
SIZES = {"tiny": 512, "small": 256, "ssdnet-paper": 128}
ENGINE_SIZE = 1024
VARIANTS = ("fp32", "fp32-1thread", "fp32-passive", "channels_last", "bf16", "jit", "onnxruntime", "compile",
            "engine")


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


def applicable(preset: str, variant: str, threads: int, with_compile: bool) -> bool:
    """Whether ``variant`` is measured for ``preset`` in this run."""
    if variant in ("fp32-1thread", "fp32-passive") and threads == 1:
        return False
    if variant in ("bf16", "engine", "fp32-passive"):
        return preset == "tiny"
    if variant == "compile":
        return with_compile and preset == "tiny"
    if variant == "onnxruntime":
        try:
            import importlib.util

            return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
        except (ImportError, ValueError):
            return False
    return True


# ------------------------------------------------------------------------------------ worker side


def _timed(fn: Callable[[], Any], repeats: int, budget: float) -> list[dict[str, float]]:
    """Up to ``repeats`` calls (at least one; stops once ``budget`` wall seconds are spent)."""
    out = []
    began = time.perf_counter()
    for _ in range(repeats):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = time.process_time()
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        out.append({"wall": wall, "cpu": time.process_time() - cpu,
                    "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, "load": load1()})
        if time.perf_counter() - began > budget:
            break
    return out


def _build(preset: str, variant: str) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A zero-argument callable running one inference of ``variant``, and facts about its set-up."""
    import numpy as np
    import torch

    from raw_synth.models import create_model

    size = SIZES[preset]
    torch.manual_seed(0)
    base = create_model(preset).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    info: dict[str, Any] = {}

    class MeanHead(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.model(t, with_sigma=False)["mu"]

    if variant in ("fp32", "fp32-passive"):
        return (lambda: base.predict(x)), info
    if variant == "fp32-1thread":
        torch.set_num_threads(1)
        return (lambda: base.predict(x)), info
    if variant == "channels_last":
        model = base.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        return (lambda: model.predict(xc)), info
    if variant == "bf16":
        def run() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return base.predict(x)

        return run, info
    if variant == "jit":
        traced = torch.jit.freeze(torch.jit.trace(MeanHead(base).eval(), x, check_trace=False))
        return (lambda: traced(x)), info
    if variant == "onnxruntime":
        import tempfile

        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "ssdnet.onnx"
        torch.onnx.export(MeanHead(base).eval(), (x,), str(path), input_names=["x"], output_names=["mu"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        return (lambda: session.run(None, feed)), info
    if variant == "compile":
        fn = torch.compile(MeanHead(base).eval())
        start = time.perf_counter()
        with torch.inference_mode():
            fn(x)
        info["compile_seconds"] = time.perf_counter() - start
        return (lambda: fn(x)), info
    if variant == "engine":
        import tempfile

        from raw_synth.checkpoint import save_model
        from raw_synth.engine import create_engine

        path = save_model(Path(tempfile.mkdtemp()) / "tiny.safetensors", base, kind="ssdnet-isp",
                          extra={"camera": {"name": "bench", "wb_gains": [2, 1, 1, 1.7],
                                            "xyz_to_cam": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}})
        eng = create_engine("ssdnet", checkpoint=path, device="cpu")
        image = np.random.default_rng(0).random((ENGINE_SIZE, ENGINE_SIZE, 3), dtype=np.float32)
        rng = np.random.default_rng(0)
        return (lambda: eng.convert(image, rng)), info
    raise SystemExit(f"unknown variant {variant!r}")


def worker(args: argparse.Namespace) -> None:
    import torch

    import raw_synth.cpu_tuning as cpu_tuning

    if args.alloc == "tuned":
        tuned = cpu_tuning.tune_cpu_allocator()
    else:
        tuned = False
        cpu_tuning._ALLOCATOR_TUNED = False  # keep the engine from tuning it in this process
    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"alloc": args.alloc, "tuned": tuned, "preset": args.preset, "variant": args.variant}
    if args.variant == "matmul":
        size = 2048
        a, b = torch.rand(size, size), torch.rand(size, size)
        a @ b
        calls = _timed(lambda: a @ b, args.repeats, args.budget)
        result["gflops"] = 2 * size**3 / statistics.median(c["wall"] for c in calls) / 1e9
        result["calls"] = calls
    else:
        fn, info = _build(args.preset, args.variant)
        result.update(info)
        with torch.inference_mode():
            fn()  # warm-up
            result["calls"] = _timed(fn, args.repeats, args.budget)
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

    size = 128  # every counted op grows linearly with the pixel count
    model = create_model(preset).eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.predict(torch.rand(1, 3, size, size))
    return counter.get_total_flops() / (size * size / 1e6)


def _run_worker(args: argparse.Namespace, preset: str, variant: str, alloc: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if variant == "fp32-passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    command = [sys.executable, __file__, "--worker", "--alloc", alloc, "--preset", preset, "--variant", variant,
               "--threads", str(args.threads), "--repeats", str(args.repeats), "--budget", str(args.budget),
               "--sizes", args.sizes]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1][:200] if lines else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,small,ssdnet-paper")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--sizes", default="", help="input side per preset, e.g. ssdnet-paper=256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per subprocess")
    parser.add_argument("--budget", type=float, default=6.0, help="wall seconds after which a subprocess stops")
    parser.add_argument("--cycles", type=int, default=3, help="times every configuration is measured")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (tiny; minutes)")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--alloc", default="default", choices=["default", "tuned"], help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _apply_sizes(args.sizes)
    if args.worker:
        worker(args)
        return

    import torch

    presets = args.presets.split(",")
    variants = [v for v in args.variants.split(",") if v]
    jobs = [("-", "matmul")] + [(p, v) for p in presets for v in variants
                                if applicable(p, v, args.threads, args.compile)]
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    extra: dict[str, list[Any]] = {}
    for cycle in range(args.cycles):
        for preset, variant in jobs:
            for alloc in (("default", "tuned") if cycle % 2 == 0 else ("tuned", "default")):
                out = _run_worker(args, preset, variant, alloc)
                key = (preset, variant, alloc)
                if "error" in out:
                    errors[f"{preset}/{variant}/{alloc}"] = out["error"]
                    continue
                results.setdefault(key, []).extend(out["calls"])
                if "compile_seconds" in out:
                    extra.setdefault("compile_seconds", []).append(round(out["compile_seconds"], 1))
                last = out["calls"][-1]
                print(f"cycle {cycle} {preset} {variant} {alloc}: {[round(c['wall'], 3) for c in out['calls']]} s, "
                      f"load {last['load']:.2f}", file=sys.stderr, flush=True)

    loads = [c["load"] for calls in results.values() for c in calls]
    summary: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/isp_speed.py"] + sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "threads": args.threads,
        "sizes": dict(SIZES),
        "load": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "flops_per_mp": {preset: flops_per_megapixel(preset) for preset in presets},
        "errors": errors,
        "skipped": {v: "onnx/onnxruntime not installed" for v in variants
                    if v == "onnxruntime" and not applicable("tiny", v, args.threads, args.compile)},
        **extra,
        "rows": [],
    }
    for (preset, variant, alloc), calls in results.items():
        row: dict[str, Any] = {"preset": preset, "variant": variant, "alloc": alloc, "calls": len(calls),
                               "load": statistics.median(c["load"] for c in calls),
                               "faults": statistics.median(c["faults"] for c in calls)}
        if variant == "matmul":
            row["gflops"] = 2 * 2048**3 / statistics.median(c["wall"] for c in calls) / 1e9
        else:
            side = ENGINE_SIZE if variant == "engine" else SIZES[preset]
            mp = side * side / 1e6
            row.update(side=side, mp_s=mp / statistics.median(c["wall"] for c in calls),
                       mp_s_best=mp / min(c["wall"] for c in calls),
                       mp_cpu_s=mp / statistics.median(c["cpu"] for c in calls))
        summary["rows"].append(row)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "raw": {"/".join(k): v for k, v in results.items()}},
                                        indent=1))

    by_key = {(r["preset"], r["variant"], r["alloc"]): r for r in summary["rows"]}
    matmul = {a: by_key[("-", "matmul", a)]["gflops"] for a in ("default", "tuned") if ("-", "matmul", a) in by_key}
    lines = [f"command: {summary['command']}",
             f"machine: {summary['machine']}, threads {args.threads}",
             f"load (1-min) during timed calls: {summary['load']}",
             f"float32 matmul 2048^3 GFLOP/s: {matmul}", "",
             "| preset | input | GFLOP/MP | variant | MP/s (median) default / tuned malloc | MP/s (best) "
             "default / tuned | MP per CPU-s default / tuned | page faults/call default / tuned | calls |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for preset in presets:
        for variant in variants:
            d, t = by_key.get((preset, variant, "default")), by_key.get((preset, variant, "tuned"))
            if d is None and t is None:
                continue

            def fmt(row: dict[str, Any] | None, field: str, spec: str = ".3f") -> str:
                return "-" if row is None else format(row[field], spec)

            side = (d or t)["side"]  # type: ignore[index]
            lines.append(
                f"| {preset} | {side}x{side} | {summary['flops_per_mp'][preset] / 1e9:.1f} | {variant} | "
                f"{fmt(d, 'mp_s')} / {fmt(t, 'mp_s')} | {fmt(d, 'mp_s_best')} / {fmt(t, 'mp_s_best')} | "
                f"{fmt(d, 'mp_cpu_s')} / {fmt(t, 'mp_cpu_s')} | "
                f"{fmt(d, 'faults', '.0f')} / {fmt(t, 'faults', '.0f')} | "
                f"{fmt(d, 'calls', 'd')} / {fmt(t, 'calls', 'd')} |")
    if errors or summary["skipped"]:
        lines += ["", "not measured: " + json.dumps({**errors, **summary["skipped"]})]
    if extra:
        lines += ["", json.dumps(extra)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
