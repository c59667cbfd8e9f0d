"""The ``raw-synth`` command line: a thin layer over library functions.

Every command turns :class:`~raw_synth.errors.RawSynthError` into one line on stderr
(``error: <message>``) and exit status 2; nothing a user types produces a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from raw_synth import __version__
from raw_synth.errors import RawSynthError, one_line
from raw_synth.image_header import DEFAULT_MAX_PIXELS

logger = logging.getLogger("raw_synth")

F = TypeVar("F", bound=Callable[..., Any])


def _error_line(error: RawSynthError) -> str:
    """The error's message as one line.

    A RawSynthError raised in a torch DataLoader worker process comes back re-raised with the
    worker's traceback in its message ("Caught RawSynthError in DataLoader worker process 0.
    Original Traceback ..."): keep the original message, its last line.
    """
    text = str(error)
    if "\n" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    prefix = f"{type(error).__module__}.{type(error).__name__}: "
    return last[len(prefix):] if last.startswith(prefix) else one_line(error)


def _friendly_errors(command: F) -> F:
    """Report RawSynthError, OS errors and running out of memory as one line and exit with status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RawSynthError as error:
            click.echo(f"error: {_error_line(error)}", err=True)
            sys.exit(2)
        except PermissionError as error:
            click.echo(f"error: {error.filename}: permission denied", err=True)
            sys.exit(2)
        except OSError as error:
            if getattr(error, "errno", None) == 28:  # ENOSPC
                click.echo(f"error: {error.filename or 'output'}: no space left on device", err=True)
            else:
                click.echo(f"error: {error.filename or 'output'}: {error.strerror or one_line(error)}", err=True)
            sys.exit(2)
        except MemoryError:
            click.echo("error: out of memory (MemoryError); try fewer --workers or a smaller --patch or batch",
                       err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="raw-synth")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """raw-synth: realistic camera-RAW denoising training data from sRGB photos."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logger.setLevel(level)


# --------------------------------------------------------------------------------------- cameras


@main.group()
def cameras() -> None:
    """Bundled camera profiles (CFA, levels, colour matrix, noise)."""


@cameras.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@_friendly_errors
def cameras_list(as_json: bool) -> None:
    """List the bundled camera profiles."""
    from raw_synth.camera import list_profiles

    profiles = list_profiles()
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in profiles], indent=2))
        return
    width = max(len(p.name) for p in profiles)
    click.echo(f"{'name':<{width}}  cfa   bits  black    white    noise")
    for p in profiles:
        noise = f"{p.noise.model}/{p.noise.sampler}" if p.noise else "-"
        click.echo(f"{p.name:<{width}}  {p.cfa}  {p.bit_depth:>4}  "
                   f"{p.black_level[0]:<7g}  {p.white_level[0]:<7g}  {noise}")


@cameras.command("show")
@click.argument("name")
@_friendly_errors
def cameras_show(name: str) -> None:
    """Print one profile (bundled NAME or a YAML path) as YAML."""
    from raw_synth.camera import get_profile

    click.echo(get_profile(name).to_yaml().rstrip())


@cameras.command("import-darktable")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the profile YAML files (one per camera).")
@click.option("--maker", default=None, help="Only this maker (substring, case-insensitive).")
@click.option("--model", default=None, help="Only models containing this text, e.g. 550d.")
@click.option("--cfa", default="RGGB", show_default=True, help="Bayer pattern of the profiles.")
@click.option("--bit-depth", default=14, show_default=True, type=click.IntRange(1, 16))
@click.option("--black", "black_level", default=0.0, show_default=True, type=float, help="Black level (DN).")
@click.option("--white", "white_level", default=None, type=float, help="White level (DN) [default: 2**bit_depth - 1].")
@_friendly_errors
def cameras_import_darktable(file: Path, out_dir: Path, maker: str | None, model: str | None, cfa: str,
                             bit_depth: int, black_level: float, white_level: float | None) -> None:
    """Convert darktable's noiseprofiles.json (read from FILE, never bundled) into camera profiles."""
    from raw_synth.noise.darktable import read_darktable_profiles

    profiles = read_darktable_profiles(file, maker=maker, model=model, cfa=cfa, bit_depth=bit_depth,
                                       black_level=black_level, white_level=white_level)
    out_dir.mkdir(parents=True, exist_ok=True)
    for profile in profiles:
        (out_dir / f"{profile.name}.yaml").write_text(profile.to_yaml(), encoding="utf-8")
    click.echo(f"wrote {len(profiles)} camera profile(s) to {out_dir}")


# --------------------------------------------------------------------------------------- convert


def _expand_images(images: tuple[str, ...],
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> list[tuple[str, Callable[[], Any]]]:
    """Turn the IMAGE arguments into (name, loader) pairs; ``samples`` means the built-in photos."""
    from raw_synth.corpora import list_samples, load_sample
    from raw_synth.io import read_image

    items: list[tuple[str, Callable[[], Any]]] = []
    for image in images:
        if image == "samples":
            for sample in list_samples():
                items.append((sample.stem, functools.partial(load_sample, sample.stem)))
        else:
            items.append((Path(image).stem, functools.partial(read_image, image, max_pixels=max_pixels)))
    return items


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the DNG files (created if needed).")
@click.option("--engine", "engine_name", default="upi", show_default=True, type=click.Choice(["upi", "ssdnet"]),
              help="Inverse ISP that makes the RAW: Unprocessing or the learned SSDNet (bundled unless --model).")
@click.option("--model", default=None, help="SSDNet checkpoint (default: the bundled one).")
@click.option("--camera", default="canon-eos-550d", show_default=True,
              help="Camera profile (bundled name or YAML path): CFA, bit depth, black and white level.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random camera of each image (upi).")
@click.option("--preview/--no-preview", default=False, help="Also write a PNG of the RAW rendered back to sRGB.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, type=click.IntRange(min=1),
              help="Refuse an image whose header claims more pixels (height x width), before decoding it.")
@_friendly_errors
def convert(images: tuple[str, ...], out_dir: Path, engine_name: str, model: str | None, camera: str, seed: int,
            preview: bool, max_pixels: int) -> None:
    """Convert sRGB IMAGES to camera RAW written as DNG files.

    IMAGES are image files, or the word 'samples' for the built-in photos.
    """
    from raw_synth.camera import get_profile
    from raw_synth.convert import convert_image
    from raw_synth.engine import create_engine

    profile = get_profile(camera)
    if model is not None and engine_name != "ssdnet":
        raise RawSynthError(f"--model: only used with --engine ssdnet, not with {engine_name!r}")
    engine = create_engine(engine_name, **({"checkpoint": model} if model is not None else {}))
    items = _expand_images(images, max_pixels)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    for index, (stem, load) in enumerate(tqdm(items, desc="convert", unit="image", disable=None, file=sys.stderr)):
        written = convert_image(load(), engine, profile, out_dir / f"{stem}.dng", seed=seed, index=index,
                                preview=preview)
        click.echo(str(written))


# ------------------------------------------------------------------------------------- calibrate


def _shape(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RawSynthError(f"--shape: expected HxW such as 1080x1920, got {text!r}") from None
    return height, width


@main.command()
@click.option("--noisy", multiple=True, help="Noisy RAW file(s): with --clean a pair fit, alone a blind estimate.")
@click.option("--clean", multiple=True, help="Clean RAW file(s) matching --noisy one to one.")
@click.option("--flat", multiple=True, help="Flat-field frames (pairs at each level) for photon transfer.")
@click.option("--dark", multiple=True, help="Dark (bias) frames for read, row noise and Tukey lambda.")
@click.option("--dng", multiple=True, help="DNG file(s) whose NoiseProfile tag gives the noise level.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the camera profile YAML here (usable with generate --cameras).")
@click.option("--json", "as_json", is_flag=True, help='Print {"shot": [4], "read": [4], ...} (normalised, RGGB order).')
@click.option("--name", default=None, help="Profile name [default: the output file stem].")
@click.option("--camera", default=None, help="Copy CFA, levels and colour matrix from this profile.")
@click.option("--iso", "iso", multiple=True, metavar="ISO|FILE=ISO",
              help="ISO of every input, or FILE=ISO for one file (repeatable) [default: each file's metadata; "
                   "a single capture level needs none].")
@click.option("--cfa", default=None, help="Bayer pattern of bare mosaics (.npy, PNG, TIFF, headerless).")
@click.option("--black", "black_level", type=float, default=None, help="Black level of bare mosaics (DN).")
@click.option("--white", "white_level", type=float, default=None, help="White level of bare mosaics (DN).")
@click.option("--shape", default=None, help="HxW of headerless mosaics.")
@_friendly_errors
def calibrate(noisy: tuple[str, ...], clean: tuple[str, ...], flat: tuple[str, ...], dark: tuple[str, ...],
              dng: tuple[str, ...], out_path: Path | None, as_json: bool, name: str | None, camera: str | None,
              iso: tuple[str, ...], cfa: str | None, black_level: float | None, white_level: float | None,
              shape: str | None) -> None:
    """Measure a camera's noise and write it as a camera profile.

    \b
    From noisy/clean pairs:   --noisy N.dng --clean C.dng
    From flat and dark frames: --flat F1 --flat F2 ... --dark D1 ...
    From one noisy RAW:        --noisy N.dng            (blind estimate)
    From a DNG NoiseProfile:   --dng IMG.dng
    Several ISOs in give a profile with the ISO relation out (every file's ISO
    known: from its metadata or --iso FILE=ISO); one capture level needs no ISO.
    """
    from raw_synth.calibrate import calibrate_files
    from raw_synth.calibrate.files import parse_iso_option
    from raw_synth.camera import get_profile

    if dng:
        if noisy or clean or flat or dark:
            raise RawSynthError("--dng cannot be combined with --noisy, --clean, --flat or --dark")
        method, paths, extra = "dng", dng, {}
    elif flat or dark:
        if not (flat and dark):
            raise RawSynthError("photon transfer needs both --flat and --dark frames")
        if noisy or clean:
            raise RawSynthError("--flat/--dark cannot be combined with --noisy/--clean")
        method, paths, extra = "flat-dark", flat, {"darks": list(dark)}
    elif noisy and clean:
        method, paths, extra = "pairs", noisy, {"clean": list(clean)}
    elif noisy:
        method, paths, extra = "blind", noisy, {}
    elif clean:
        raise RawSynthError("--clean needs matching --noisy files")
    else:
        raise RawSynthError("nothing to calibrate: give --noisy [--clean], --flat and --dark, or --dng")
    if out_path is None and not as_json:
        raise RawSynthError("give --out PROFILE.yaml and/or --json")

    result = calibrate_files(method, list(paths), iso=parse_iso_option(iso), cfa=cfa, black_level=black_level,
                             white_level=white_level, shape=_shape(shape), **extra)
    if out_path is not None:
        base = get_profile(camera) if camera else None
        profile = result.to_profile(name or out_path.stem, base=base)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(profile.to_yaml(), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
    elif out_path is not None:
        summary = result.summary()
        shots = ", ".join(f"{v:.3g}" for v in summary["shot"])
        reads = ", ".join(f"{v:.3g}" for v in summary["read"])
        at = "unknown ISO" if summary["iso"] is None else f"ISO {summary['iso']:g}"
        click.echo(f"{out_path}: {method} fit at {at}: shot [{shots}], read [{reads}]")


# ------------------------------------------------------------------------------------ noise-eval


@main.command("noise-eval")
@click.option("--sidd-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="SIDD-Medium RAW folder (scene folders with NOISY/GT/METADATA .MAT files).")
@click.option("--models", default=None,
              help="Comma-separated noise models (default: all built-in), e.g. gaussian-nlf,profile:sidd-s6.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.md, report.json and noise_kl.png.")
@click.option("--cameras", "camera_codes", default=None, help="Only these phones, e.g. S6,GP.")
@click.option("--bins", default=10, show_default=True, type=click.IntRange(1, 100), help="Clean-intensity bins.")
@click.option("--crop", default=None, type=int, help="Evaluate a centred crop of this many packed pixels per side.")
@click.option("--max-pairs", default=None, type=int, help="Stop after this many noisy/clean pairs.")
@click.option("--seed", default=0, show_default=True, type=int)
@_friendly_errors
def noise_eval(sidd_dir: Path, models: str | None, out_dir: Path, camera_codes: str | None, bins: int,
               crop: int | None, max_pairs: int | None, seed: int) -> None:
    """Score noise models against real noisy/clean RAW pairs (marginal KL, Noise Flow protocol)."""
    from raw_synth.noise_eval import evaluate_noise_models, write_noise_eval

    report = evaluate_noise_models(
        sidd_dir, models=models, bins=bins, seed=seed, crop=crop, max_pairs=max_pairs,
        cameras=camera_codes.split(",") if camera_codes else None)
    write_noise_eval(report, out_dir)
    click.echo(report.to_markdown())


# -------------------------------------------------------------------------- generate / inspect / verify


@main.command()
@click.option("--n", "n", required=True, type=click.IntRange(min=1), help="Number of noisy/clean pairs.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Store folder (re-running the same command resumes).")
@click.option("--src", default="deadleaves", show_default=True,
              help="Inputs: a folder (recursive), a glob, a list file, 'samples' or a procedural corpus "
                   "('deadleaves', ...).")
@click.option("--engine", "engine_name", default="upi", show_default=True, type=click.Choice(["upi", "ssdnet"]),
              help="Inverse ISP: Unprocessing or the learned SSDNet (bundled checkpoint unless --model).")
@click.option("--model", default=None, help="SSDNet checkpoint (default: the bundled one).")
@click.option("--cameras", default="sidd", show_default=True,
              help="Comma list of camera profiles: 'sidd', 'eld', bundled names or YAML paths.")
@click.option("--patch", default=256, show_default=True, type=click.IntRange(min=16),
              help="Full-resolution crop side (even).")
@click.option("--format", "fmt", default="zarr", show_default=True, type=click.Choice(["zarr", "hdf5"]))
@click.option("--shard-size", default=256, show_default=True, type=click.IntRange(min=1), help="Pairs per shard.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler, e.g. tcp://host:8786.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, help="Engine device: cpu, cuda, mps or auto.")
@click.option("--clean-dtype", default="float16", show_default=True, type=click.Choice(["float16", "float32"]))
@click.option("--uncertainty", is_flag=True, help="Also store SSDNet's per-pixel uncertainty (ssdnet engine).")
@click.option("--overwrite", is_flag=True, help="Replace a store made with a different configuration.")
@click.option("--crops-per-image", default=1, show_default=True, type=click.IntRange(min=1),
              help="Photo sources: K consecutive pairs crop the same photo, decoded once "
                   "(part of the store's identity).")
@click.option("--downscale", default="1", show_default=True, type=click.Choice(["1", "2", "4"]),
              help="Photo sources: decode photos shrunk by this factor, a box average (part of the store's identity).")
@click.option("--cache-mb", default=1024, show_default=True, type=click.IntRange(min=0),
              help="Decoded photos each worker keeps in memory, in MiB (speed and memory only).")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, type=click.IntRange(min=1),
              help="Photo sources: skip images whose header claims more pixels (height x width), before decoding "
                   "(part of the store's identity).")
@click.option("--resume-check", default="checksum", show_default=True, type=click.Choice(["checksum", "structure"]),
              help="How shards of an earlier run are checked before they are kept: every value and the checksum, "
                   "or attributes and array headers only. A shard that fails is written again.")
@_friendly_errors
def generate(n: int, out_dir: Path, src: str, engine_name: str, model: str | None, cameras: str, patch: int,
             fmt: str, shard_size: int, workers: int, scheduler: str | None, seed: int, device: str,
             clean_dtype: str, uncertainty: bool, overwrite: bool, crops_per_image: int, downscale: str,
             cache_mb: int, max_pixels: int, resume_check: str) -> None:
    """Generate N noisy/clean RAW pairs into a sharded Zarr or HDF5 store."""
    from pipelines.run import GenerateConfig
    from pipelines.run import generate as run_generate
    from raw_synth.cpu_tuning import tune_process_allocator

    if scheduler is None and device.strip().lower() == "cpu":
        tune_process_allocator()  # before any thread: the forked workers inherit one arena (see its docstring)
    if workers > 1 or scheduler is not None:  # an in-process run does not import Dask at all
        _quiet_dask(logger.level)

    summary = run_generate(GenerateConfig(
        n=n, out=str(out_dir), src=src, engine=engine_name, model=model, cameras=cameras, patch=patch,
        format=fmt, shard_size=shard_size, workers=workers, scheduler=scheduler, seed=seed, device=device,
        clean_dtype=clean_dtype, overwrite=overwrite, uncertainty=uncertainty, crops_per_image=crops_per_image,
        downscale=int(downscale), cache_mb=cache_mb, max_pixels=max_pixels, resume_check=resume_check))
    rewritten = f", {summary.shards_rewritten} damaged shards rewritten" if summary.shards_rewritten else ""
    click.echo(f"{summary.out}: {summary.n_written} pairs written, {summary.n_resumed} resumed, "
               f"{summary.pairs_per_second:.1f} pairs/s, {summary.seconds:.1f} s, "
               f"{len(summary.skipped)} inputs skipped{rewritten}")


def _quiet_dask(level: int) -> None:
    """Keep Dask's INFO chatter (cluster start and stop) off the terminal unless -vv is given."""
    import distributed  # noqa: F401  (configures its loggers on import; override them after)

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                 "distributed.worker", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


@main.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG grid of noisy/clean pairs rendered to sRGB.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the ISO and noise-level histograms.")
@_friendly_errors
def inspect(store: Path, as_json: bool, preview: Path | None, plot: Path | None) -> None:
    """Summarise a store: counts, cameras, ISO and noise-level histograms."""
    from raw_synth.store import plot_store, preview_grid, summarize_store

    summary = summarize_store(store)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_format_summary(store, summary))
    if preview is not None:
        preview_grid(store, preview)
        click.echo(f"preview: {preview}")
    if plot is not None:
        plot_store(store, plot)
        click.echo(f"plot: {plot}")


def _format_summary(store: Path, summary: dict[str, Any]) -> str:
    lines = [
        f"store     {store}",
        f"samples   {summary.get('n_samples')} of {summary.get('n_expected')} in {summary.get('n_shards')} "
        f"{summary.get('format')} shards, patch {summary.get('patch_size')}",
    ]
    cameras = summary.get("cameras") or summary.get("per_camera") or {}
    if cameras:
        lines.append("cameras   " + ", ".join(f"{name} {count}" for name, count in sorted(cameras.items())))
    for key in ("shot", "read"):
        stats = summary.get(key) or {}
        if isinstance(stats, dict) and "median" in stats:
            lines.append(f"{key:<9} min {stats['min']:.3g}  median {stats['median']:.3g}  max {stats['max']:.3g}")
    skipped = summary.get("skipped") or summary.get("n_skipped")
    if skipped:
        lines.append(f"skipped   {skipped if isinstance(skipped, int) else len(skipped)} inputs")
    return "\n".join(lines)


@main.command()
@click.argument("store", type=click.Path(path_type=Path))
@_friendly_errors
def verify(store: Path) -> None:
    """Check every shard: complete, checksum, finite values in range. Exit 0 only if all pass."""
    from raw_synth.store import verify_store

    report = verify_store(store)
    for warning in getattr(report, "warnings", []):
        click.echo(f"warning: {warning}", err=True)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        click.echo(f"{store}: FAILED ({len(report.problems)} problem(s) in {report.n_shards} shards)")
        sys.exit(1)
    click.echo(f"{store}: OK ({report.n_checked} samples in {report.n_shards} shards verified)")


# ------------------------------------------------------------------------------------- eval-sidd


_ENSEMBLE_HELP = ("Average each checkpoint over this many Bayer-preserving flips/turns of the input (+0.2 to "
                  "+0.4 dB at 8 with the bundled model, for 8x the time).")


@main.command("eval-sidd")
@click.option("--sidd-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with ValidationNoisyBlocksRaw.mat + ValidationGtBlocksRaw.mat, "
                   "or BenchmarkNoisyBlocksRaw.mat.")
@click.option("--model", "models", multiple=True, default=("identity",), show_default=True,
              help="Denoiser checkpoint (.safetensors), 'identity', 'anscombe-nlm' or 'anscombe-bm3d' "
                   "(needs pip install \"raw-synth[bm3d]\"); repeat for several rows.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Report folder: report.md, report.json, plots/, submissions/ (benchmark).")
@click.option("--split", type=click.Choice(["validation", "benchmark"]), default="validation", show_default=True)
@click.option("--metadata-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Per-image *_METADATA_RAW_*.MAT files (scene folders, e.g. SIDD_Benchmark_Data), "
                   "matched to the images in sorted scene-folder order.")
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@click.option("--cfa", default=None,
              help="Without metadata: Bayer pattern of every image (e.g. GRBG), or a comma list with one pattern "
                   "or SIDD phone code (S6, GP, IP, N6, G4) per image. Default: RGGB (an assumption).")
@click.option("--noise", type=click.Choice(["auto", "metadata", "blind"]), default="auto", show_default=True,
              help="Noise level for conditioned models: metadata NoiseProfile, else blind estimate.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also score identity and anscombe-nlm (validation split).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help=_ENSEMBLE_HELP)
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
@_friendly_errors
def eval_sidd(sidd_dir: Path, models: tuple[str, ...], out_dir: Path, split: str, metadata_dir: Path | None,
              max_images: int | None, cfa: str | None, noise: str, baselines: bool, device: str,
              batch_size: int, ensemble: str, no_plots: bool) -> None:
    """Denoise the SIDD validation or benchmark RAW blocks, score them and write a report."""
    from denoise.eval_sidd import run_eval_sidd
    from denoise.report import format_summary

    evaluation = run_eval_sidd(sidd_dir, list(models), out_dir, split=split, metadata_dir=metadata_dir,
                               max_images=max_images, cfa=cfa, noise=noise, baselines=baselines, device=device,
                               batch_size=batch_size, plots=not no_plots, progress=True, ensemble=int(ensemble))
    click.echo(format_summary(evaluation, out_dir))


# ------------------------------------------------------------------------------- training commands


_RESUME_HELP = "Continue the run in --out where it stopped (an error when it holds none)."
_RESTART_HELP = "Start from step 0, discarding the training state of the run in --out."
_MAX_STEPS_HELP = ("Stop this call once the run has done this many steps in total (a resumable state is saved; "
                   "the recipe's schedule is kept).")


def _resume_mode(out_dir: Path, state_name: str, resume: bool, restart: bool) -> bool:
    """Whether a training command continues the run in ``out_dir``: both commands resume by default."""
    if resume and restart:
        raise RawSynthError("--resume and --restart exclude each other")
    if resume and not (out_dir / state_name).is_file():
        raise RawSynthError(f"{out_dir}: no training state to resume ({state_name} is missing)")
    return not restart


@main.command("train-isp")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Camera RAW files, AIM 2022 pairs (.jpg + .npy) or rgb/ + raw/ folders.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: state, metrics log, plot and the exported checkpoint.")
@click.option("--config", "config", default=None,
              help="Recipe: a YAML file, or the bundled 'cpu' (default) or 'paper'.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help=_MAX_STEPS_HELP)
@click.option("--resume", is_flag=True, help=_RESUME_HELP)
@click.option("--restart", is_flag=True, help=_RESTART_HELP)
@_friendly_errors
def train_isp_command(data_dir: Path, out_dir: Path, config: str | None, max_steps: int | None, resume: bool,
                      restart: bool) -> None:
    """Train the SSDNet inverse ISP (soft supervision) on RAW/sRGB pairs; re-running resumes."""
    from raw_synth.training import train_isp
    from raw_synth.training.trainer import STATE_NAME

    summary = train_isp(config, data_dir, out_dir, resume=_resume_mode(out_dir, STATE_NAME, resume, restart),
                        max_steps=max_steps)
    psnr = f", held-out RAW PSNR {summary.val_psnr:.2f} dB" if summary.val_psnr is not None else ""
    click.echo(f"{summary.run_dir}: {summary.steps}/{summary.total_steps} steps{psnr}; model {summary.model_path}")


@main.command("train-denoiser")
@click.option("--data", "data_dir", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Store made by raw-synth generate (or datasets.path in the recipe).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--config", "config", default=None,
              help="Recipe (datasets / network / train / val / logger): a YAML file, or the bundled 'cpu', "
                   "'paper' or 'finetune' (start from the bundled denoiser) [default: the recipe defaults; on "
                   "resume the run's own config.yaml].")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help=_MAX_STEPS_HELP)
@click.option("--resume", is_flag=True, help=_RESUME_HELP)
@click.option("--restart", is_flag=True, help=_RESTART_HELP)
@_friendly_errors
def train_denoiser_command(data_dir: Path | None, out_dir: Path, config: str | None, max_steps: int | None,
                           resume: bool, restart: bool) -> None:
    """Train the 4-channel SSDNet RAW denoiser on generated shards; re-running resumes (torchrun for several GPUs)."""
    from denoise.train import STATE_NAME, train_denoiser

    go_on = _resume_mode(out_dir, STATE_NAME, resume, restart) and (out_dir / STATE_NAME).is_file()
    summary = train_denoiser(config, data_dir, out_dir, resume=go_on, restart=restart, stop_after=max_steps)
    best = f", best val PSNR {summary.best_psnr:.2f} dB at step {summary.best_step}" if summary.best_psnr else ""
    click.echo(f"{summary.out}: {summary.steps} steps{best}; model {summary.model_path}")


@main.command("denoise")
@click.argument("in_path", metavar="IN", type=click.Path(path_type=Path))
@click.option("--model", default=None, help="Denoiser checkpoint [default: the bundled denoiser-tiny].")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output DNG.")
@click.option("--cfa", default=None, help="Bayer pattern of a bare mosaic (.npy, PNG, TIFF).")
@click.option("--black", type=float, default=None, help="Black level of a bare mosaic (DN).")
@click.option("--white", type=float, default=None, help="White level of a bare mosaic (DN).")
@click.option("--camera", default=None, help="Camera profile giving the noise level when the file has no NoiseProfile.")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a before/after sRGB preview PNG.")
@click.option("--tile", default=256, show_default=True, type=click.IntRange(min=32))
@click.option("--device", default="cpu", show_default=True)
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help=_ENSEMBLE_HELP)
@_friendly_errors
def denoise_command(in_path: Path, model: str | None, out_path: Path, cfa: str | None, black: float | None,
                    white: float | None, camera: str | None, preview: Path | None, tile: int, device: str,
                    ensemble: str) -> None:
    """Denoise a real RAW file (DNG or any rawpy format, or a bare mosaic) into a DNG."""
    from denoise.denoise_file import denoise_file

    result = denoise_file(in_path, model, out_path, cfa=cfa, black=black, white=white, camera=camera,
                          preview=preview, tile=tile, device=device, ensemble=int(ensemble))
    click.echo(f"{result.out}: {result.size[1]}x{result.size[0]} {result.cfa}, noise level: "
               f"{result.noise_source}, {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
