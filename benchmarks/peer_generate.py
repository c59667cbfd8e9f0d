"""Real-photo source against a plain script: ``raw-synth generate`` beside a peer that does the same job.

The **peer** is a short, self-contained multiprocessing script (no raw-synth code): for each
sample it crops a photo (decoded to ``uint8``, cropped, then made float), runs Brooks et al.'s
Unprocessing in numpy (inverse tone map, inverse gamma, a random sRGB -> camera matrix, inverse
white balance and brightness gains with highlight protection, RGGB mosaic), adds
heteroscedastic Gaussian noise ``variance = shot * x + read`` with ``(shot, read)`` drawn like
Unprocessing's sampler, quantises to 10-bit ``uint16`` DN, and writes shards of 256 pairs with
h5py, compressed like raw-synth's HDF5 shards (gzip level 1 with shuffle, one chunk per sample,
fsync at the end). Workers are a :class:`multiprocessing.Pool`; each task writes one shard.
Two modes: ``memory`` keeps every decoded photo in the worker (when the folder's decoded size
fits ``--peer-memory-mb``), ``decode`` decodes the photo again for every sample.

The **driver** runs, one after the other, each as a separate process as a user would:

* ``raw-synth generate --n N --src DIR --engine upi --patch 256 --workers W --format hdf5 --out OUT``
  (default cameras, shard size 256; HDF5 so that both write the same container and codec);
* ``python benchmarks/peer_generate.py peer --src DIR --n N --patch 256 --workers W --out OUT``;

for W = 1 and 2, on (a) a folder of 20 real photos that fits every cache and (b) a folder of 500
photos (0.1 to 4 MP) larger than raw-synth's default 1 GiB cache per worker; and
``raw-synth generate`` with the default ``deadleaves`` source at W = 1 and 2 (the scaling target),
plus a few ``--crops-per-image`` / ``--downscale`` variants on folder (b). It prints medians of
``--repeats`` runs as a Markdown table (``--out results.md`` writes it too).

The photos: the 12 JPEGs of ``../shared/data/mate-backgrounds-photos`` (GPL; read from there and
copied only into the temporary work folder, never into the repository) and scikit-image's
bundled colour photos; folder (a) adds 3 re-encoded crops, folder (b) is 500 JPEG re-encodes of
random crops and rescales of them. Without ``../shared`` the script says so and exits 0.

Usage::

    python benchmarks/peer_generate.py --repeats 3 --out results.md     # the figures in RESULTS.md
    python benchmarks/peer_generate.py --quick                          # a smoke run, ~2 minutes
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = REPO.parent / "shared" / "data" / "mate-backgrounds-photos"

# ============================================================================ the peer generator

#: XYZ -> camera matrices of four cameras (Brooks et al. 2019, section 3.2), mixed at random.
XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
#: Linear sRGB -> XYZ (D65).
RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
BLACK, WHITE = 64, 1023  # a 10-bit sensor
_PHOTOS: dict[str, np.ndarray] = {}  # the worker's decoded photos (memory mode)


def decode(path: str) -> np.ndarray:
    """A photo as uint8 RGB ``(H, W, 3)``."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def photo(path: str, mode: str) -> np.ndarray:
    """The decoded photo: kept in this worker (``memory``) or decoded again (``decode``)."""
    if mode == "decode":
        return decode(path)
    if path not in _PHOTOS:
        _PHOTOS[path] = decode(path)
    return _PHOTOS[path]


def unprocess(rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sRGB ``(H, W, 3)`` float32 in [0, 1] -> packed RGGB RAW ``(4, H/2, W/2)``, its gains and matrix."""
    weights = rng.uniform(1e-8, 1e8, size=(4, 1, 1))
    xyz_to_cam = (XYZ_TO_CAMS * weights).sum(axis=0) / weights.sum()
    rgb_to_cam = xyz_to_cam @ RGB_TO_XYZ
    rgb_to_cam /= rgb_to_cam.sum(axis=1, keepdims=True)
    rgb_gain = 1.0 / rng.normal(0.8, 0.1)
    red_gain, blue_gain = rng.uniform(1.9, 2.4), rng.uniform(1.5, 1.9)

    x = np.clip(rgb, 0.0, 1.0)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)          # inverse of the smoothstep tone curve
    x = np.power(np.maximum(x, 1e-8), 2.2, dtype=np.float32)     # inverse gamma
    x = x @ rgb_to_cam.T.astype(np.float32)                      # linear sRGB -> camera RGB
    gains = (np.array([1.0 / red_gain, 1.0, 1.0 / blue_gain]) / rgb_gain).astype(np.float32)
    grey = x.mean(axis=-1, keepdims=True)
    mask = np.square(np.maximum(grey - 0.9, 0.0) / 0.1)          # keep highlights from clipping
    x *= np.maximum(mask + (1.0 - mask) * gains, gains)
    x = np.clip(x, 0.0, 1.0)
    packed = np.stack([x[0::2, 0::2, 0], x[0::2, 1::2, 1], x[1::2, 0::2, 1], x[1::2, 1::2, 2]])
    return packed.astype(np.float32), np.array([red_gain, 1.0, blue_gain]) * rgb_gain, rgb_to_cam


def add_noise(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Heteroscedastic Gaussian noise, Unprocessing's ``(shot, read)`` sampler; returns 10-bit DN."""
    log_shot = rng.uniform(math.log(1e-4), math.log(0.012))
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    shot, read = math.exp(log_shot), math.exp(log_read)
    noisy = clean + rng.standard_normal(clean.shape, dtype=np.float32) * np.sqrt(shot * clean + read)
    dn = np.clip(np.rint(noisy * (WHITE - BLACK) + BLACK), 0, WHITE).astype(np.uint16)
    return dn, shot, read


def make_shard(task: tuple) -> int:
    """Make samples ``[start, stop)`` and write them as one HDF5 file; returns the sample count."""
    import h5py

    index, start, stop, paths, order, patch, seed, mode, out = task
    count = stop - start
    half = patch // 2
    noisy = np.empty((count, 4, half, half), np.uint16)
    clean = np.empty((count, 4, half, half), np.float16)
    shots, reads = np.empty(count), np.empty(count)
    wbs, ccms, crops = np.empty((count, 3)), np.empty((count, 3, 3)), np.empty((count, 2), np.int64)
    names = []
    for row, sample in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, sample])
        path = paths[order[sample % len(order)]]
        image = photo(path, mode)
        y = 2 * int(rng.integers(0, (image.shape[0] - patch) // 2 + 1))
        x = 2 * int(rng.integers(0, (image.shape[1] - patch) // 2 + 1))
        rgb = image[y : y + patch, x : x + patch].astype(np.float32) / np.float32(255.0)
        raw, wbs[row], ccms[row] = unprocess(rgb, rng)
        noisy[row], shots[row], reads[row] = add_noise(raw, rng)
        clean[row], crops[row] = raw, (y, x)
        names.append(os.path.basename(path))
    target = Path(out) / f"shard-{index:06d}.h5"
    with h5py.File(target, "w") as f:
        for name, data in (("noisy", noisy), ("clean", clean)):
            f.create_dataset(name, data=data, chunks=(1, *data.shape[1:]), compression="gzip", compression_opts=1,
                             shuffle=True)
        for name, data in (("shot", shots), ("read", reads), ("wb_gains", wbs), ("cam_matrix", ccms), ("crop", crops)):
            f.create_dataset(name, data=data)
        f.create_dataset("source", data=names, dtype=h5py.string_dtype("utf-8"))
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    return count


def peer_main(args: argparse.Namespace) -> None:
    """The peer script: generate ``--n`` pairs from ``--src`` into ``--out``."""
    import multiprocessing

    from PIL import Image

    began = time.perf_counter()
    paths, decoded_bytes = [], 0
    for path in sorted(Path(args.src).rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            with Image.open(path) as image:
                width, height = image.size
            if min(width, height) >= args.patch:
                paths.append(str(path))
                decoded_bytes += width * height * 3
    mode = args.mode
    if mode == "auto":
        mode = "memory" if decoded_bytes <= args.memory_mb * 2**20 else "decode"
    order = np.random.default_rng([args.seed, 7]).permutation(len(paths))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    tasks = [(i, start, min(start + args.shard_size, args.n), paths, order, args.patch, args.seed, mode, args.out)
             for i, start in enumerate(range(0, args.n, args.shard_size))]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        written = sum(pool.imap_unordered(make_shard, tasks))
    seconds = time.perf_counter() - began
    print(f"{args.out}: {written} pairs, {written / seconds:.1f} pairs/s, {seconds:.1f} s, {len(paths)} photos, "
          f"mode {mode} ({decoded_bytes / 2**20:.0f} MiB decoded)")


# ============================================================================ the photo folders


def _skimage_photos() -> list[tuple[str, np.ndarray]]:
    """scikit-image's bundled colour photos (no download)."""
    import skimage.data

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        try:
            image = getattr(skimage.data, name)()
        except Exception as error:  # a build without the file: skip it
            print(f"(skimage.data.{name} unavailable: {error})")
            continue
        if image.ndim == 3 and image.shape[2] >= 3:
            photos.append((name, np.ascontiguousarray(image[..., :3])))
    return photos


def _random_variant(sources: list, rng: np.random.Generator, patch: int):
    """A JPEG-able random rescale and crop of one of ``sources`` (PIL images): area uniform in 0.1-4 MP."""
    from PIL import Image

    area = rng.uniform(0.1e6, 4.0e6)
    large_enough = [s for s in sources if s.width * s.height >= area]
    large_enough = large_enough or [max(sources, key=lambda s: s.width * s.height)]
    image = large_enough[int(rng.integers(len(large_enough)))]
    scale = rng.uniform(min(1.0, math.sqrt(area / (image.width * image.height))), 1.0)
    scaled = image.resize((max(patch, round(image.width * scale)), max(patch, round(image.height * scale))),
                          Image.BILINEAR)
    aspect = rng.uniform(0.6, 1.0)
    crop_w = max(patch, min(scaled.width, round(math.sqrt(area / aspect))))
    crop_h = max(patch, min(scaled.height, round(area / crop_w)))
    left = int(rng.integers(0, scaled.width - crop_w + 1))
    top = int(rng.integers(0, scaled.height - crop_h + 1))
    return scaled.crop((left, top, left + crop_w, top + crop_h))


def build_folders(work: Path, n_large: int, patch: int) -> tuple[Path, Path]:
    """``(small, large)``: 20 photos, and ``n_large`` re-encoded variants (reused if already built)."""
    from PIL import Image

    small, large = work / "photos20", work / f"photos{n_large}"
    sources = [Image.open(p).convert("RGB") for p in sorted(SHARED_PHOTOS.glob("*.jpg"))]
    sources += [Image.fromarray(a) for _, a in _skimage_photos()]
    rng = np.random.default_rng(2026)
    if not (small / "done").exists():
        shutil.rmtree(small, ignore_errors=True)
        small.mkdir(parents=True)
        for path in sorted(SHARED_PHOTOS.glob("*.jpg")):
            shutil.copyfile(path, small / path.name)
        for name, array in _skimage_photos():
            Image.fromarray(array).save(small / f"{name}.jpg", quality=95)
        for i in range(20 - len(list(small.glob("*.jpg")))):
            variant = _random_variant(sources[:12], rng, patch)
            variant.save(small / f"variant{i:02d}.jpg", quality=90)
        (small / "done").touch()
    if not (large / "done").exists():
        shutil.rmtree(large, ignore_errors=True)
        large.mkdir(parents=True)
        for i in range(n_large):
            variant = _random_variant(sources, rng, patch)
            variant.save(large / f"p{i:04d}.jpg", quality=int(rng.integers(80, 96)))
        (large / "done").touch()
    return small, large


def _decoded_mib(folder: Path) -> tuple[int, float]:
    from PIL import Image

    count, total = 0, 0
    for path in folder.glob("*.jpg"):
        with Image.open(path) as image:
            total += image.size[0] * image.size[1] * 3
            count += 1
    return count, total / 2**20


# ============================================================================ the driver


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _run(command: list[str], out: Path) -> tuple[float, float, str]:
    """Run one command; ``(wall seconds, pairs/s printed, load before->after)``; removes ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # the previous run's deleted shards must not be written back during this one
    time.sleep(1.0)
    load = _loadavg()
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - began
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    match = re.search(r"([\d.]+) pairs/s", done.stdout)
    return wall, float(match.group(1)) if match else float("nan"), f"{load}->{_loadavg()}"


def _commands(args: argparse.Namespace, work: Path, small: Path, large: Path) -> list[tuple[str, str, int, list[str]]]:
    """``(source label, tool label, workers, command)`` of every run of one repeat."""
    raw_synth = shutil.which("raw-synth") or "raw-synth"
    out = str(work / "out")
    common = ["--n", str(args.n), "--engine", "upi", "--patch", str(args.patch), "--format", args.format,
              "--out", out, "--overwrite"]
    peer = [sys.executable, str(Path(__file__).resolve()), "peer", "--n", str(args.n), "--patch", str(args.patch),
            "--out", out]
    runs = []
    for label, folder in ((f"(a) {small.name}", small), (f"(b) {large.name}", large)):
        for workers in (2, 1):
            runs.append((label, "raw-synth", workers,
                         [raw_synth, "generate", "--src", str(folder), "--workers", str(workers), *common]))
            runs.append((label, "peer script", workers, [*peer, "--src", str(folder), "--workers", str(workers)]))
    for workers in (2, 1):
        runs.append(("deadleaves (default)", "raw-synth", workers,
                     [raw_synth, "generate", "--workers", str(workers), *common]))
    if not args.no_variants:
        for extra in (["--crops-per-image", "4"], ["--downscale", "2"], ["--crops-per-image", "4", "--downscale", "2"]):
            runs.append((f"(b) {large.name}", "raw-synth " + " ".join(extra), 2,
                         [raw_synth, "generate", "--src", str(large), "--workers", "2", *common, *extra]))
        runs.append((f"(a) {small.name}", "raw-synth --crops-per-image 4", 2,
                     [raw_synth, "generate", "--src", str(small), "--workers", "2", *common, "--crops-per-image", "4"]))
        zarr = [*common[: common.index("--format")], "--format", "zarr", *common[common.index("--format") + 2 :]]
        runs.append((f"(a) {small.name}", "raw-synth --format zarr (its default)", 2,
                     [raw_synth, "generate", "--src", str(small), "--workers", "2", *zarr]))
    return runs


def _table(results: dict, args: argparse.Namespace, small: Path, large: Path) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"Commit {commit or '?'}, {os.cpu_count()} CPUs ({cpu}), {when}.",
             "",
             f"N = {args.n}, patch {args.patch}, `--engine upi`, shard size 256, `--format {args.format}` "
             f"(raw-synth); medians of {args.repeats} run(s); wall = whole command, process start to exit.", "",
             f"(a) {small.name}: {_decoded_mib(small)[0]} photos, {_decoded_mib(small)[1]:.0f} MiB decoded; "
             f"(b) {large.name}: {_decoded_mib(large)[0]} photos, {_decoded_mib(large)[1]:.0f} MiB decoded.", "",
             "| source | tool | workers | wall s | pairs/s (wall) | runs (wall s) | load before->after |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    medians = {}
    for (source, tool, workers), runs in results.items():
        walls = [w for w, _, _ in runs]
        wall = statistics.median(walls)
        medians[(source, tool, workers)] = wall
        lines.append(f"| {source} | {tool} | {workers} | {wall:.1f} | {args.n / wall:.1f} | "
                     f"{', '.join(f'{w:.1f}' for w in walls)} | {', '.join(label for _, _, label in runs)} |")
    lines += ["", "| source | raw-synth / peer, pairs/s at 2 workers | raw-synth 2 vs 1 worker | peer 2 vs 1 worker |",
              "| --- | ---: | ---: | ---: |"]
    def speed_up(slow: tuple | None, fast: tuple | None) -> str:
        """``wall(slow) / wall(fast)`` of two table rows, or ``-`` when one is missing."""
        if slow not in medians or fast not in medians:
            return "-"
        return f"{medians[slow] / medians[fast]:.2f}x"

    for source in dict.fromkeys(s for s, _, _ in results):
        ratio = speed_up((source, "peer script", 2), (source, "raw-synth", 2))
        ours = speed_up((source, "raw-synth", 1), (source, "raw-synth", 2))
        theirs = speed_up((source, "peer script", 1), (source, "peer script", 2))
        lines.append(f"| {source} | {ratio} | {ours} | {theirs} |")
    return "\n".join(lines) + "\n"


def driver_main(args: argparse.Namespace) -> None:
    if not SHARED_PHOTOS.is_dir():
        print(f"skipped: {SHARED_PHOTOS} is absent (the real photos live outside the repository)")
        return
    if args.quick:
        args.n, args.n_large, args.repeats = 200, 60, 1
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="peer-generate-"))
    work.mkdir(parents=True, exist_ok=True)
    small, large = build_folders(work, args.n_large, args.patch)
    print(f"folders in {work}: {small.name} {_decoded_mib(small)}, {large.name} {_decoded_mib(large)} (count, MiB)")
    results: dict[tuple[str, str, int], list] = {}
    runs = _commands(args, work, small, large)
    try:
        for repeat in range(args.repeats):
            for source, tool, workers, command in runs:
                wall, printed, load = _run(command, work / "out")
                results.setdefault((source, tool, workers), []).append((wall, printed, load))
                print(f"[{repeat + 1}/{args.repeats}] {source} | {tool} | {workers} workers: {wall:.1f} s "
                      f"({args.n / wall:.1f} pairs/s), load {load}", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    table = _table(results, args, small, large)
    print()
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    peer = sub.add_parser("peer", help="run the peer script alone")
    peer.add_argument("--src", required=True)
    peer.add_argument("--out", required=True)
    peer.add_argument("--n", type=int, default=3000)
    peer.add_argument("--patch", type=int, default=256)
    peer.add_argument("--workers", type=int, default=2)
    peer.add_argument("--shard-size", type=int, default=256)
    peer.add_argument("--seed", type=int, default=0)
    peer.add_argument("--mode", choices=("auto", "memory", "decode"), default="auto")
    peer.add_argument("--memory-mb", type=int, default=1024, help="decoded photos a worker may keep (auto mode)")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--n-large", type=int, default=500, help="photos in folder (b)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format", choices=("hdf5", "zarr"), default="hdf5", help="raw-synth's shard format")
    parser.add_argument("--workdir", default=None, help="keep the photo folders here (default: a temp dir, removed)")
    parser.add_argument("--no-variants", action="store_true", help="skip the --crops-per-image/--downscale rows")
    parser.add_argument("--quick", action="store_true", help="smoke run: N=200, 60 photos in (b), 1 repeat")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if args.command == "peer":
        peer_main(args)
    else:
        driver_main(args)


if __name__ == "__main__":
    main()
