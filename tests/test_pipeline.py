"""Tests of the generation pipeline (pipelines/): determinism, resume, refusal, skipped inputs, clusters."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.config import GenerateConfig, check_config, resolve_cameras
from pipelines.plan import ShardPlan, n_shards, plan_shards
from pipelines.run import generate
from raw_synth.errors import RawSynthError
from raw_synth.store import open_shards, verify_store

REPO = Path(__file__).resolve().parents[1]

#: The configuration most tests share: 12 pairs, 3 shards, SIDD + ELD cameras (all noise models).
BASE = dict(n=12, patch=32, shard_size=4, cameras="sidd,eld", seed=7, workers=1, engine="upi")


def _config(out: Path, **changes) -> GenerateConfig:
    return GenerateConfig(out=str(out), **{**BASE, **changes})


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _checksums(out: Path) -> dict[str, str]:
    shards = _manifest(out)["shards"]
    return {Path(name).stem: entry["checksum"] for name, entry in shards.items()}


def _contents(out: Path) -> list[dict]:
    with open_shards(out) as ds:
        return [ds[i] for i in range(len(ds))]


def _assert_same_samples(a: Path, b: Path) -> None:
    left, right = _contents(a), _contents(b)
    assert len(left) == len(right)
    for x, y in zip(left, right):
        assert sorted(x) == sorted(y)
        for key in x:
            if isinstance(x[key], np.ndarray):
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            else:
                assert x[key] == y[key] or (x[key] != x[key] and y[key] != y[key]), key


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster of 2 worker processes for the whole module; yields its address."""
    from pipelines.cluster import start_local_cluster

    cluster = start_local_cluster(2)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted in-process run of BASE (zarr)."""
    out = tmp_path_factory.mktemp("reference") / "store"
    summary = generate(_config(out), progress=False)
    assert (summary.n_written, summary.n_resumed, summary.shards_written) == (12, 0, 3)
    assert summary.scheduler == "in-process"
    return out


# ---------------------------------------------------------------------------------- planning


def test_plan_shards() -> None:
    assert plan_shards(10, 4) == [ShardPlan(0, 0, 4), ShardPlan(1, 4, 8), ShardPlan(2, 8, 10)]
    assert plan_shards(8, 4)[-1] == ShardPlan(1, 4, 8)
    assert [s.count for s in plan_shards(1, 256)] == [1]
    assert n_shards(257, 256) == 2
    with pytest.raises(RawSynthError, match=r"^--shard-size: expected a positive integer, got 0$"):
        plan_shards(10, 0)


def test_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (dict(patch=33), "--patch: expected an even number of pixels >= 2, got 33"),
        (dict(n=0), "--n: expected an integer >= 1, got 0"),
        (dict(format="tfrecord"), "--format: expected one of zarr, hdf5, got 'tfrecord'"),
        (dict(model="x.safetensors"), "--model: only used with --engine ssdnet, not with 'upi'"),
        (dict(engine="ssdnet", model=str(tmp_path / "none.safetensors")),
         f"--model: {tmp_path / 'none.safetensors'}: checkpoint file not found"),
        (dict(uncertainty=True), "--uncertainty: needs --engine ssdnet (its variance head), not 'upi'"),
        (dict(clean_dtype="int8"), "--clean-dtype: expected float16 or float32, got 'int8'"),
        (dict(workers=0), "--workers: expected an integer >= 1, got 0"),
    ]
    for changes, message in cases:
        with pytest.raises(RawSynthError) as info:
            check_config(_config(tmp_path / "x", **changes))
        assert str(info.value) == message
    check_config(_config(tmp_path / "x", engine="ssdnet"))  # the bundled checkpoint
    import raw_synth.engine

    monkeypatch.setattr(raw_synth.engine, "BUNDLED_CHECKPOINT", tmp_path / "absent.safetensors")
    with pytest.raises(RawSynthError, match=r"^--model: this install has no bundled SSDNet checkpoint; pass --model "
                                            r"CKPT.safetensors or use --engine upi$"):
        check_config(_config(tmp_path / "x", engine="ssdnet"))
    monkeypatch.undo()
    with pytest.raises(RawSynthError, match=r"^--cameras: unknown camera profile 'nikon-z9'"):
        generate(_config(tmp_path / "y", cameras="sidd,nikon-z9"), progress=False)
    assert not (tmp_path / "y").exists()
    names = [p.name for p in resolve_cameras("eld, sidd-g4 ,sidd")]
    assert names[:6] == ["eld-canon-5d4", "eld-canon-700d", "eld-canon-70d", "eld-nikon-d850", "eld-sony-a7s2",
                         "sidd-g4"]
    assert len(names) == 10  # sidd-g4 only once


# ---------------------------------------------------------------------------------- contents


def test_samples_follow_the_per_sample_stream(reference: Path) -> None:
    """Sample i is exactly: camera, source, engine and noise drawn in order from sample_rng(seed, i)."""
    from raw_synth.corpora import load_corpus_image
    from raw_synth.engine import create_engine
    from raw_synth.noise import apply_noise, to_dn
    from raw_synth.noise.profiles import sample_camera_noise
    from raw_synth.seeding import sample_rng

    report = verify_store(reference)
    assert report.ok, report.problems
    cameras = resolve_cameras("sidd,eld")
    samples = _contents(reference)
    assert [s["index"] for s in samples] == list(range(12))
    for i in (0, 5, 11):
        rng = sample_rng(7, i)
        camera = cameras[int(rng.integers(len(cameras)))]
        rgb = load_corpus_image("deadleaves", i, size=32, seed=7)
        result = create_engine("upi").convert(rgb, rng)
        draw = sample_camera_noise(camera, rng)
        noisy, shot, read = apply_noise(result.packed, draw.params, rng)
        dn = to_dn(noisy, camera.black_level, camera.white_level)
        s = samples[i]
        assert ((s["camera"], s["cfa"], s["source"], tuple(s["crop"]))
                == (camera.name, camera.cfa, f"deadleaves#{i}", (0, 0)))
        black, white = np.asarray(camera.black_level, np.float32), np.asarray(camera.white_level, np.float32)
        expected = ((dn.astype(np.float32) - black[:, None, None]) / (white - black)[:, None, None])
        np.testing.assert_allclose(s["noisy"], expected, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(s["clean"], result.packed.astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(s["shot"], shot, rtol=1e-6)
        np.testing.assert_allclose(s["read"], read, rtol=1e-6)
        if camera.name.startswith("sidd"):
            assert s["iso"] == pytest.approx(draw.iso)
        else:
            assert s["gain"] == pytest.approx(draw.gain)
    assert {s["camera"] for s in samples} <= {c.name for c in cameras}
    assert all(s["noisy"].shape == (4, 16, 16) for s in samples)


# ---------------------------------------------------------------------------------- determinism


def test_local_cluster_hdf5_matches_in_process_zarr(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "h5"
    summary = generate(_config(out, workers=2, format="hdf5"), progress=False)
    assert summary.scheduler == "local" and summary.n_written == 12
    assert sorted(p.name for p in out.glob("shard-*")) == [f"shard-00000{i}.h5" for i in range(3)]
    assert _checksums(out) == _checksums(reference)  # the checksum is over decoded columns
    _assert_same_samples(out, reference)
    assert verify_store(out).ok


def test_distributed_cluster_gives_identical_arrays(reference: Path, scheduler: str, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    summary = generate(_config(out, scheduler=scheduler, workers=3), progress=False)
    assert summary.scheduler == scheduler and summary.n_written == 12
    assert len(summary.peak_rss) >= 1 and all(v > 0 for v in summary.peak_rss.values())
    assert _checksums(out) == _checksums(reference)
    _assert_same_samples(out, reference)
    assert verify_store(out).ok


# ---------------------------------------------------------------------------------- resume


_KILLED_RUN = """
import sys, time
import pipelines.run as run
from pipelines.config import GenerateConfig
slow = run.make_shard
def make_shard(*args, **kwargs):
    time.sleep(1.0)          # keep the run alive long enough to be killed between shards
    return slow(*args, **kwargs)
run.make_shard = make_shard
run.generate(GenerateConfig(**{config}), progress=False)
"""


def test_resume_after_kill_9(reference: Path, scheduler: str, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    config = {**BASE, "out": str(out)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN.format(config=repr(config))], cwd=REPO, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if _manifest(out)["shards"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    done = _manifest(out)["shards"]
    assert 1 <= len(done) < 3
    (out / ".partial-shard-000002.zarr.999-dead").mkdir()  # what a write killed midway leaves

    summary = generate(_config(out, scheduler=scheduler, workers=2), progress=False)
    assert summary.n_resumed == 4 * len(done) and summary.n_written == 12 - 4 * len(done)
    assert not list(out.glob(".partial-*"))
    assert _checksums(out) == _checksums(reference)
    _assert_same_samples(out, reference)
    report = verify_store(out)
    assert report.ok and report.n_checked == 12, report.problems

    again = generate(_config(out), progress=False)  # nothing left to do
    assert (again.n_written, again.n_resumed, again.shards_resumed) == (0, 12, 3)


def test_missing_shard_file_is_rewritten(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "shard-000001.zarr")
    summary = generate(_config(out), progress=False)
    assert (summary.n_written, summary.n_resumed) == (4, 8)
    assert _checksums(out) == _checksums(reference)


# ---------------------------------------------------------------------------------- refusal, overwrite


def test_different_config_is_refused_unless_overwrite(reference: Path, tmp_path: Path) -> None:
    before = _manifest(reference)
    with pytest.raises(RawSynthError) as info:
        generate(_config(reference, seed=8), progress=False)
    assert str(info.value) == (
        f"{reference}: holds a store made with a different configuration (field seed: 7 != 8); "
        f"use --overwrite to replace it"
    )
    with pytest.raises(RawSynthError, match=r"\(field patch: 32 != 64\)"):
        generate(_config(reference, patch=64), progress=False)
    assert _manifest(reference) == before

    out = tmp_path / "over"
    shutil.copytree(reference, out)
    (out / "notes.txt").write_text("user file, kept")
    summary = generate(_config(out, seed=8, n=6, overwrite=True), progress=False)
    assert (summary.n_written, summary.n_resumed) == (6, 0)
    manifest = _manifest(out)
    assert manifest["config"]["seed"] == 8 and manifest["n_samples"] == 6
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "shard-000000.zarr",
                                                     "shard-000001.zarr"]
    assert verify_store(out).ok

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"x")
    with pytest.raises(RawSynthError) as info:
        generate(_config(foreign), progress=False)
    assert str(info.value) == (
        f"{foreign}: folder is not empty and holds no manifest.json (not a raw-synth store); "
        f"use --overwrite to replace it, or choose another --out"
    )


# ---------------------------------------------------------------------------------- sources


def _photo(path: Path, height: int, width: int, seed: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def test_skipped_inputs_are_recorded(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _photo(photos / "a.png", 40, 48, 1)
    _photo(photos / "b.png", 36, 36, 2)
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xffnot really a jpeg" * 4)
    (photos / "notes.png").write_text("a text file with an image name")
    _photo(photos / "small.png", 20, 64, 3)
    jpeg = _photo(photos / "cut.jpg", 64, 64, 4, fmt="JPEG")
    jpeg.write_bytes(jpeg.read_bytes()[:-1500])  # header fine, pixels missing: fails in the worker
    out = tmp_path / "store"
    generate(_config(out, src=str(photos), n=6, shard_size=3), progress=False)
    skipped = {(s["source"], s["reason"].split(" (")[0]) for s in _manifest(out)["skipped"]}
    assert skipped == {
        ("photos/corrupt.jpg", "not an image file"),
        ("photos/notes.png", "not an image file"),
        ("photos/small.png", "smaller than the patch"),
        ("photos/cut.jpg", "truncated or corrupt image"),
    }
    assert ({"source": "photos/small.png", "reason": "smaller than the patch (20x64 < 32x32)"}
            in _manifest(out)["skipped"])
    samples = _contents(out)
    assert {s["source"] for s in samples} == {"photos/a.png", "photos/b.png"}
    assert all(s["crop"][0] % 2 == 0 and s["crop"][1] % 2 == 0 for s in samples)
    assert verify_store(out).ok


def test_no_usable_input_is_a_clear_error(tmp_path: Path) -> None:
    photos = tmp_path / "bad"
    (photos / "x").mkdir(parents=True)
    (photos / "x" / "a.png").write_text("text")
    _photo(photos / "tiny.jpg", 10, 10, 0)
    out = tmp_path / "store"
    with pytest.raises(RawSynthError) as info:
        generate(_config(out, src=str(photos)), progress=False)
    assert str(info.value) == (
        f"no usable input images in {photos}: 2 skipped (1 not an image file, 1 smaller than the patch)"
    )
    assert not out.exists()


def test_src_variants(tmp_path: Path) -> None:
    photos = tmp_path / "in"
    _photo(photos / "one.png", 40, 40, 1)
    _photo(photos / "deep" / "two.jpg", 48, 40, 2)
    listing = tmp_path / "list.txt"
    listing.write_text("# two photos\nin/one.png\nin/deep/two.jpg  # second\n")
    variants = {
        "folder": (str(photos), {"in/one.png", "in/deep/two.jpg"}),
        "glob": (str(photos / "**" / "*.jpg"), {str(photos / "deep" / "two.jpg")}),
        "list": (str(listing), {"in/one.png", "in/deep/two.jpg"}),
    }
    for name, (src, expected) in variants.items():
        out = tmp_path / name
        generate(_config(out, src=src, n=4, shard_size=4, cameras="sidd-g4"), progress=False)
        assert {s["source"] for s in _contents(out)} == expected, name
    out = tmp_path / "samples"
    generate(_config(out, src="samples", n=5, shard_size=5, patch=64, cameras="eld-sony-a7s2"), progress=False)
    sources = [s["source"] for s in _contents(out)]
    assert all(s.startswith("samples/") and s.endswith(f"#{i}") for i, s in enumerate(sources))
    assert len({s.split("#")[0] for s in sources}) == 4  # the 4 photos, one pass before repeating
    assert verify_store(out).ok


@pytest.mark.parametrize("fork", [False, True])
def test_local_cluster_workers_get_the_allocator_environment_and_quiet_settings(
    fork: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dask
    from distributed import Client

    from pipelines.cluster import QUIET_WORKERS, WORKER_ENVIRON, LocalWorkerSetup, start_local_cluster

    def blas_threads() -> list[int]:  # every OpenBLAS the worker has loaded
        import ctypes
        import re

        import numpy  # noqa: F401

        libraries = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", open("/proc/self/maps").read())))
        getters = [getattr(ctypes.CDLL(lib), name, None) for lib in libraries
                   for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_")]
        return [int(getter()) for getter in getters if getter is not None]

    import pipelines.cluster

    monkeypatch.setattr(pipelines.cluster, "CLIENT_STATE", "set in the client", raising=False)
    keys = [k for k in QUIET_WORKERS if k != "distributed.nanny.pre-spawn-environ"]
    with start_local_cluster(1, fork=fork) as cluster, Client(cluster) as client:
        seen = list(client.run(lambda: {k: os.environ.get(k) for k in WORKER_ENVIRON}).values())
        settings = list(client.run(lambda: {k: dask.config.get(k) for k in keys}).values())
        plugins = list(client.run(lambda dask_worker: sorted(dask_worker.plugins)).values())
        threads = list(client.run(blas_threads).values())
        inherited = list(client.run(lambda: getattr(sys.modules["pipelines.cluster"], "CLIENT_STATE", None)).values())
    assert seen == [{k: str(v) for k, v in WORKER_ENVIRON.items()}]
    assert settings == [{k: QUIET_WORKERS[k] for k in keys}]
    assert settings[0]["distributed.admin.tick.interval"] == "1s"
    assert WORKER_ENVIRON["MALLOC_ARENA_MAX"] == 1 and WORKER_ENVIRON["OMP_NUM_THREADS"] == 1
    assert LocalWorkerSetup.name in plugins[0]
    assert all(n == 1 for n in threads[0])
    assert inherited == ["set in the client" if fork else None]  # a forked worker has the client's memory


def test_ssdnet_engine_without_model_uses_the_bundled_checkpoint(tmp_path: Path) -> None:
    from raw_synth.checkpoint import file_sha256, read_checkpoint_metadata
    from raw_synth.engine import bundled_checkpoint

    bundled = bundled_checkpoint()
    if bundled is None:
        pytest.skip("no bundled checkpoint in this checkout")
    out = tmp_path / "ssdnet"
    generate(_config(out, n=4, shard_size=2, cameras="sidd-s6", engine="ssdnet"), progress=False)
    manifest = _manifest(out)
    assert manifest["engine"] == {"name": "ssdnet", "checkpoint_sha256": file_sha256(bundled)}
    assert manifest["config"]["model"] == str(bundled.resolve())
    camera = read_checkpoint_metadata(bundled)["extra"]["camera"]
    store = open_shards(out)
    assert len(store) == 4 and verify_store(out).ok
    sample = store[0]
    assert sample["clean"].shape == (4, 16, 16)
    np.testing.assert_allclose(sample["wb_gains"], camera["wb_gains"])
    np.testing.assert_allclose(sample["xyz_to_cam"], camera["xyz_to_cam"])
