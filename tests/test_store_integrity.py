"""Store integrity under faults, concurrency and hostile input (issue 13).

Each case first reproduces what went wrong (two writers on one folder, a full disk, a flipped
byte, a manifest pointing outside the store, a worker dying mid-write, a failing worker) and
then asserts the outcome: one writer refused with the other's pid and host, one-line errors with
no traceback, damage found on read and on resume naming the shard, sample and column, and a store
that verifies.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipelines.config import GenerateConfig
from pipelines.run import generate
from raw_synth.errors import RawSynthError
from raw_synth.store import Manifest, open_shards, verify_store
from raw_synth.store.lock import LOCK_NAME, StoreLock, lock_holder

REPO = Path(__file__).resolve().parents[1]
BASE = dict(n=12, patch=32, shard_size=4, cameras="sidd", seed=3, workers=1, engine="upi")
SUFFIX = {"zarr": ".zarr", "hdf5": ".h5"}


def _config(out: Path, **changes) -> GenerateConfig:
    return GenerateConfig(out=str(out), **{**BASE, **changes})


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _run_cli(args: list[str], limit_bytes: int | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """``raw-synth ARGS`` in a fresh interpreter, optionally with a file-size limit (a full disk)."""
    prelude = ""
    if limit_bytes is not None:
        # the limit is set after the imports, which may write caches; SIGXFSZ ignored: writes fail with EFBIG
        prelude = textwrap.dedent(f"""
            import resource, signal
            import h5py, zarr, torch, distributed  # noqa: F401
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))
        """)
    code = prelude + "import sys\nfrom raw_synth_cli.cli import main\nsys.argv = ['raw-synth'] + sys.argv[1:]\nmain()\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr and "Compute Failed" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in last, last
    return last


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------- 1. the store lock


def _hold_lock(folder: str, ready, release) -> None:
    with StoreLock(folder):
        ready.set()
        release.wait(60)


def test_second_writer_is_refused_with_the_holders_pid_and_host(tmp_path: Path) -> None:
    out = tmp_path / "store"
    generate(_config(out), progress=False)
    before = _manifest(out)["shards"]
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(out), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        assert lock_holder(out)["pid"] == holder.pid
        with pytest.raises(RawSynthError) as info:
            generate(_config(out), progress=False)  # would otherwise resume (and clean temporary entries)
        assert str(info.value) == (
            f"{out}: another run is writing this store (pid {holder.pid} on {socket.gethostname()}, since "
            f"{lock_holder(out)['since']}); wait for it to finish or choose another --out")
        # a reader needs no lock, and verify says that a writer is at work
        report = verify_store(out)
        assert report.ok and any(w.startswith(f"{LOCK_NAME}: a run is writing this store now (pid {holder.pid}")
                                 for w in report.warnings)
        assert len(open_shards(out)) == 12
    finally:
        release.set()
        holder.join(30)
    assert _manifest(out)["shards"] == before
    assert not (out / LOCK_NAME).exists() and lock_holder(out) is None
    # a lock left by a killed holder is free: the kernel released it
    stale = context.Process(target=lambda: (StoreLock(out).acquire(), os._exit(0)))
    stale.start()
    stale.join(30)
    assert (out / LOCK_NAME).exists() and lock_holder(out) is None
    summary = generate(_config(out), progress=False)
    assert (summary.n_resumed, summary.n_written) == (12, 0)
    assert verify_store(out).ok and not (out / LOCK_NAME).exists()


def test_refusal_names_a_holder_that_has_just_taken_the_lock(tmp_path: Path) -> None:
    """A holder writes its record just after its flock: a refused writer waits for it (up to 1 s)."""
    import fcntl
    import threading

    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, record not written yet
        record = {"pid": 4242, "host": "elsewhere", "command": "raw-synth generate", "since": "2026-12-03T18:00:00"}
        late = threading.Timer(0.2, lambda: os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0))
        late.start()
        with pytest.raises(RawSynthError) as info:
            StoreLock(tmp_path).acquire()
        late.join()
        assert str(info.value) == (f"{tmp_path}: another run is writing this store (pid 4242 on elsewhere, since "
                                   f"2026-12-03T18:00:00); wait for it to finish or choose another --out")
        os.ftruncate(fd, 0)  # a holder that never writes its record is still refused, after the wait
        with pytest.raises(RawSynthError, match=r"another run is writing this store \(another process\)"):
            StoreLock(tmp_path).acquire()
    finally:
        os.close(fd)


def test_two_concurrent_generate_runs_one_refused_other_verifies(tmp_path: Path) -> None:
    out = tmp_path / "store"
    args = ["generate", "--n", "48", "--out", str(out), "--patch", "32", "--shard-size", "4", "--workers", "1",
            "--engine", "upi", "--cameras", "sidd", "--seed", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    code = "import sys\nfrom raw_synth_cli.cli import main\nsys.argv = ['raw-synth'] + sys.argv[1:]\nmain()\n"
    procs = [subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=REPO) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    codes = sorted(p.returncode for p in procs)
    refused = [err for p, (_, err) in zip(procs, results) if p.returncode != 0]
    if codes == [0, 0]:
        # the second started after the first had finished: it resumed the complete store
        assert any("48 resumed" in err for _, err in results)
    else:
        assert codes == [0, 2], results
        assert len(refused) == 1 and "Traceback" not in refused[0]
        line = refused[0].strip().splitlines()[-1]
        assert line.startswith(f"error: {out.resolve()}: another run is writing this store (pid ")
        assert f" on {socket.gethostname()}, since " in line
    report = verify_store(out)
    assert report.ok, report.problems
    assert report.n_checked == 48 and not any(p.name.startswith(".partial-") for p in out.iterdir())


# ------------------------------------------------------------------------------- 2. a full disk


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_full_disk_is_one_line_without_segfault(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "store"
    result = _run_cli(["generate", "--n", "16", "--out", str(out), "--patch", "64", "--shard-size", "8",
                       "--workers", "1", "--engine", "upi", "--format", fmt], limit_bytes=12_000)
    line = _assert_one_line_error(result, f"{out}/shard-000000{SUFFIX[fmt]}: cannot write shard: File too large")
    assert line.endswith("(errno 27 EFBIG)")
    assert [p.name for p in out.iterdir()] == ["manifest.json"]  # no shard, no temporary entry, no lock


def test_full_disk_on_two_workers_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "store"
    result = _run_cli(["generate", "--n", "16", "--out", str(out), "--patch", "64", "--shard-size", "8",
                       "--workers", "2", "--engine", "upi", "--format", "hdf5"], limit_bytes=12_000)
    _assert_one_line_error(result, "cannot write shard: File too large")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_enospc_from_the_file_system_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    import raw_synth.store.writer as writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, "_install", full)
    out = tmp_path / "store"
    with pytest.raises(RawSynthError) as info:
        generate(_config(out, format=fmt), progress=False)
    assert str(info.value) == (f"{out}/shard-000000{SUFFIX[fmt]}: cannot write shard: No space left on device "
                               f"(errno 28 ENOSPC)")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def test_read_only_out_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    out = tmp_path / "ro" / "store"
    with pytest.raises(RawSynthError, match=rf"^--out {out}: cannot create the folder \(Read-only file system\)$"):
        generate(_config(out), progress=False)


# ------------------------------------------------------------------------------- 4. corrupt shards


def _shard_file(out: Path, fmt: str, k: int, column: str = "noisy") -> Path:
    shard = out / f"shard-{k:06d}{SUFFIX[fmt]}"
    return shard / column / "c" / "0" / "0" / "0" / "0" if fmt == "zarr" else shard


def _tamper(out: Path, fmt: str, k: int, column: str, position: tuple, value) -> None:
    """Change one stored value the way a bit flip would: a valid file with a wrong number."""
    shard = out / f"shard-{k:06d}{SUFFIX[fmt]}"
    if fmt == "zarr":
        import zarr

        arr = zarr.open_array(str(shard / column), mode="r+")
        arr[position] = value
    else:
        with h5py.File(shard, "r+") as f:
            f[column][position] = value


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_damaged_value_found_on_read_and_rewritten_on_resume(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "store"
    generate(_config(out, format=fmt), progress=False)
    good = _manifest(out)["shards"]
    with open_shards(out) as ds:
        reference = [ds[i] for i in range(len(ds))]
    _tamper(out, fmt, 1, "noisy", (2, 1, 3, 4), 7)
    _tamper(out, fmt, 2, "shot", (1, 0), 0.108)
    with open_shards(out) as ds:
        ds[4]  # an intact sample of the damaged shard reads fine
        with pytest.raises(RawSynthError) as info:
            ds[6]
        assert str(info.value) == (f"{out}/shard-000001{SUFFIX[fmt]}: sample 6 column noisy: data does not match its "
                                   f"stored CRC-32C (corrupt); run raw-synth verify on the store, then raw-synth "
                                   f"generate again with the same options to rewrite the shard")
        with pytest.raises(RawSynthError, match=rf"shard-000002{SUFFIX[fmt]}: sample 9 column shot: data does not "
                                                rf"match its stored digest \(corrupt\)"):
            ds[8]
    # the caller may opt out of the checks
    with open_shards(out, verify="none") as ds:
        assert float(ds[9]["shot"][0]) == 0.108 and ds[6]["index"] == 6
    with open_shards(out, verify="structure") as ds:
        ds[6]
    # a re-run finds both shards on resume, rewrites them with a note, and the store is whole again
    summary = generate(_config(out, format=fmt), progress=False)
    assert (summary.shards_resumed, summary.shards_written, summary.shards_rewritten) == (1, 2, 2)
    manifest = _manifest(out)
    assert [(r["shard"], r["reason"]) for r in manifest["rewritten"]] == [
        (f"shard-000001{SUFFIX[fmt]}", "sample 6 column noisy: data does not match its stored CRC-32C (corrupt)"),
        (f"shard-000002{SUFFIX[fmt]}", "sample 9 column shot: data does not match its stored digest (corrupt)"),
    ]
    assert {k: v["checksum"] for k, v in manifest["shards"].items()} == {k: v["checksum"] for k, v in good.items()}
    assert verify_store(out).ok
    with open_shards(out) as ds:
        for i, expected in enumerate(reference):
            np.testing.assert_array_equal(ds[i]["noisy"], expected["noisy"])
            np.testing.assert_array_equal(ds[i]["shot"], expected["shot"])


def test_flipped_byte_in_a_compressed_chunk(tmp_path: Path) -> None:
    out = tmp_path / "store"
    generate(_config(out, format="zarr"), progress=False)
    _flip_byte(_shard_file(out, "zarr", 1))
    assert not verify_store(out).ok
    with open_shards(out) as ds:
        problems = []
        for i in range(4, 8):
            try:
                ds[i]
            except RawSynthError as error:
                problems.append(str(error))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{out}/shard-000001.zarr: sample ")
    assert " column noisy: " in problems[0] and "\n" not in problems[0]
    # the command line says what it repaired
    from click.testing import CliRunner

    from raw_synth_cli.cli import main

    args = ["generate", "--out", str(out), "--format", "zarr", "--resume-check", "checksum"]
    for key, value in BASE.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"{out}: 4 pairs written, 8 resumed, ") and line.endswith(
        " s, 0 inputs skipped, 1 damaged shards rewritten"), line
    assert verify_store(out).ok


def test_resume_structure_check_is_cheaper_but_catches_a_swapped_shard(tmp_path: Path) -> None:
    out = tmp_path / "store"
    generate(_config(out), progress=False)
    # shard 0 replaced by a copy of shard 1: intact data, wrong shard
    shutil.rmtree(out / "shard-000000.zarr")
    shutil.copytree(out / "shard-000001.zarr", out / "shard-000000.zarr")
    summary = generate(_config(out, resume_check="structure"), progress=False)
    assert summary.shards_written == 1
    assert _manifest(out)["rewritten"][0]["reason"].startswith("start in the shard (4) differs from manifest.json (0)")
    assert verify_store(out).ok


def test_format_1_shards_still_read_and_are_checked_whole(tmp_path: Path) -> None:
    out = tmp_path / "store"
    generate(_config(out, format="hdf5"), progress=False)
    for k in range(3):  # strip the digests: what raw-synth wrote before format 2
        with h5py.File(out / f"shard-{k:06d}.h5", "r+") as f:
            attrs = json.loads(f.attrs["raw_synth"])
            attrs.pop("digests")
            attrs["format_version"] = 1
            f.attrs["raw_synth"] = json.dumps(attrs)
    with open_shards(out) as ds:
        assert [ds[i]["index"] for i in range(12)] == list(range(12))
    _tamper(out, "hdf5", 1, "clean", (0, 0, 0, 0), 0.5)
    with open_shards(out) as ds:
        with pytest.raises(RawSynthError, match=r"shard-000001.h5: checksum mismatch"):
            ds[5]
    assert verify_store(out).problems[0].startswith("shard-000001.h5: checksum mismatch")


# ------------------------------------------------------------------------------- 6. manifest paths


def test_manifest_pointing_outside_the_store_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "store"
    generate(_config(out), progress=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(out / "shard-000000.zarr", outside / "shard-000000.zarr")
    shutil.rmtree(out / "shard-000000.zarr")
    data = _manifest(out)
    data["shards"]["../outside/shard-000000.zarr"] = data["shards"].pop("shard-000000.zarr")
    (out / "manifest.json").write_text(json.dumps(data))
    message = (f"{out}/manifest.json: shard entry '../outside/shard-000000.zarr' is not a zarr shard name of this "
               f"store (expected shard-NNNNNN.zarr)")
    report = verify_store(out)
    assert not report.ok and report.problems == [message]
    with pytest.raises(RawSynthError) as info:
        open_shards(out)
    assert str(info.value) == message
    with pytest.raises(RawSynthError) as info:
        generate(_config(out), progress=False)
    assert str(info.value) == message + "; use --overwrite to replace it"
    # a shard that is a symbolic link out of the store is refused too
    data["shards"]["shard-000000.zarr"] = data["shards"].pop("../outside/shard-000000.zarr")
    (out / "manifest.json").write_text(json.dumps(data))
    (out / "shard-000000.zarr").symlink_to(outside / "shard-000000.zarr")
    assert verify_store(out).problems[0].startswith("shard-000000.zarr: lies outside the store")
    with pytest.raises(RawSynthError, match="shard lies outside the store"):
        open_shards(out)[0]


@pytest.mark.parametrize("field, value, message", [
    ("n_samples", 999, "n_samples is 999 but the stored configuration says n = 12 (the manifest was edited or "
                       "damaged)"),
    ("shard_size", 3, "shard_size is 3 but the stored configuration says shard_size = 4"),
    ("skipped", [{"source": 1}], "skipped: expected a list of {source, reason} strings"),
])
def test_edited_manifest_fields_are_refused(tmp_path: Path, field: str, value, message: str) -> None:
    out = tmp_path / "store"
    generate(_config(out), progress=False)
    data = _manifest(out)
    data[field] = value
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RawSynthError) as info:
        Manifest.load(out)
    assert str(info.value).startswith(f"{out}/manifest.json: {message}")


@pytest.mark.parametrize("key, value, message", [
    ("count", -1, "count: expected a non-negative integer, got -1"),
    ("start", "0", "start: expected a non-negative integer, got '0'"),
    ("checksum", "abc", "checksum: expected 64 hex digits, got 'abc'"),
])
def test_malformed_shard_entries_are_refused(tmp_path: Path, key: str, value, message: str) -> None:
    out = tmp_path / "store"
    generate(_config(out), progress=False)
    data = _manifest(out)
    data["shards"]["shard-000001.zarr"][key] = value
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RawSynthError) as info:
        Manifest.load(out)
    assert str(info.value) == f"{out}/manifest.json: shard shard-000001.zarr: {message}"


# ------------------------------------------------------------------------------- 5 and 8. workers


def test_worker_failure_is_one_line_on_two_workers(tmp_path: Path) -> None:
    # a photo folder whose only image goes away after the scan: every worker fails to read it
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photos / "a.png")
    out = tmp_path / "store"
    script = textwrap.dedent(f"""
        import sys
        import raw_synth.sources as sources
        real = sources.resolve_sources
        def resolve(*args, **kwargs):
            result = real(*args, **kwargs)
            open({str(photos / 'a.png')!r}, 'wb').close()  # emptied after the header scan
            return result
        sources.resolve_sources = resolve
        from raw_synth_cli.cli import main
        sys.argv = ['raw-synth', 'generate', '--n', '8', '--out', {str(out)!r}, '--patch', '32', '--shard-size', '4',
                    '--workers', '2', '--engine', 'upi', '--src', {str(photos)!r}]
        main()
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=env,
                            cwd=REPO)
    _assert_one_line_error(result, "no readable input image found", "photos/a.png")


def test_worker_killed_mid_write_leaves_nothing_and_recomputes_no_finished_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first two workers are forked from this process and carry the patches: the first attempt at
    shard 2 kills its worker after writing the temporary entry. A finished shard that were computed
    again would be installed again, under a new inode, after the client recorded it."""
    import pipelines.worker as worker
    import raw_synth.store.writer as writer
    from raw_synth.store.manifest import Manifest as ManifestClass

    log = tmp_path / "calls"
    log.mkdir()
    out = tmp_path / "store"
    real_make, real_install, real_record = worker.make_shard, writer._install, ManifestClass.record_shard
    recorded: dict[str, int] = {}

    def make_shard(shard_index, start, stop, job):
        (log / f"{shard_index}-{os.getpid()}-{os.urandom(4).hex()}").touch()
        return real_make(shard_index, start, stop, job)

    def install(tmp, final):
        if final.name.startswith("shard-000002") and not (log / "killed").exists():
            (log / "killed").touch()
            os._exit(1)
        return real_install(tmp, final)

    def record_shard(self, info, state="complete"):
        recorded[info.name] = os.stat(out / info.name).st_ino
        return real_record(self, info, state)

    monkeypatch.setattr(worker, "make_shard", make_shard)
    monkeypatch.setattr(writer, "_install", install)
    monkeypatch.setattr(ManifestClass, "record_shard", record_shard)
    summary = generate(_config(out, n=40, workers=2), progress=False)
    assert summary.n_written == 40 and (log / "killed").exists()
    assert {name: os.stat(out / name).st_ino for name in recorded} == recorded
    calls = [int(p.name.split("-")[0]) for p in log.iterdir() if p.name != "killed"]
    assert all(calls.count(k) == 1 for k in set(calls) - {2}), sorted(calls)
    assert not any(p.name.startswith(".partial-") for p in out.iterdir())
    assert verify_store(out).ok


def test_a_store_error_inside_a_dataloader_worker_is_one_line() -> None:
    """torch re-raises a worker's exception with the worker's traceback in its message; the CLI keeps one line."""
    from torch._utils import ExceptionWrapper

    from raw_synth_cli.cli import _error_line

    try:
        raise RawSynthError("/s/shard-000001.zarr: sample 5 column noisy: data does not match its stored CRC-32C")
    except RawSynthError:
        wrapper = ExceptionWrapper(sys.exc_info(), where="in DataLoader worker process 0")
    with pytest.raises(RawSynthError) as info:
        wrapper.reraise()
    assert "\n" in str(info.value)
    assert _error_line(info.value) == ("/s/shard-000001.zarr: sample 5 column noisy: data does not match its stored "
                                     "CRC-32C")
    assert _error_line(RawSynthError("plain")) == "plain"
