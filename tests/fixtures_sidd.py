"""Writers of small files in exactly the SIDD formats, for tests (no SIDD pixels are shipped).

* :func:`write_mat_v73`: a MATLAB v7.3 MAT file (HDF5 with MATLAB's 512-byte header userblock,
  arrays stored column-major, i.e. transposed, with a ``MATLAB_class`` attribute), as SIDD's
  ``*_NOISY_RAW_*.MAT`` / ``*_GT_RAW_*.MAT``.
* :func:`write_sidd_metadata`: a v5 ``*_METADATA_RAW_*.MAT`` with struct ``metadata`` holding
  the fields raw-synth reads, including ``UnknownTags`` as a struct array of ``ID``/``Offset``/
  ``Value`` (CFAPattern 33422, NoiseProfile 51041).
* :func:`write_sidd_scene` / :func:`make_scene_pair`: a SIDD-Medium scene folder whose noisy image
  is the clean one plus heteroscedastic Gaussian noise of the metadata's NoiseProfile.
* :func:`write_sidd_blocks`, :func:`write_block_positions`: validation/benchmark block files and
  ``BenchmarkBlocks32.mat``.

These writers are independent of :mod:`raw_synth.io.sidd` so that they can test it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import h5py
import numpy as np
import scipy.io

PathLike = Union[str, Path]

S6_SCENE = "0001_001_S6_00100_00060_3200_L"

_MATLAB_CLASS = {
    np.dtype(np.float32): "single",
    np.dtype(np.float64): "double",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32",
}

_COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}

# Real S6 matrices (scene 0001), used as defaults.
S6_COLOR_MATRIX1 = (0.6640625, -0.04589844, -0.12011719,
                    -0.54296875, 1.43847656, 0.07128906,
                    -0.17675781, 0.40527344, 0.47558594)
S6_COLOR_MATRIX2 = (1.23828125, -0.44433594, -0.27832031,
                    -0.45019531, 1.46972656, 0.06933594,
                    -0.08984375, 0.29199219, 0.61328125)


def _matlab_header(text: str) -> bytes:
    """The 128-byte MATLAB MAT-file header: 116 text bytes, 8 subsystem bytes, version, 'IM'."""
    head = text.encode("ascii")[:116].ljust(116, b" ")
    return head + b"\x00" * 8 + (0x0200).to_bytes(2, "little") + b"IM"


def write_mat_v73(path: PathLike, variables: dict[str, np.ndarray]) -> Path:
    """Write numeric arrays as a MATLAB v7.3 MAT file, the way MATLAB does.

    Each array is stored transposed (HDF5 sees MATLAB's column-major layout with axes
    reversed) with attribute ``MATLAB_class``; the first 512 bytes are the MATLAB header.
    """
    p = Path(path)
    with h5py.File(p, "w", userblock_size=512) as fh:
        for name, value in variables.items():
            arr = np.asarray(value)
            ds = fh.create_dataset(name, data=np.ascontiguousarray(arr.T))
            ds.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS[arr.dtype])
    header = _matlab_header("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 "
                            "HDF5 schema 1.00 .")
    with p.open("r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
    return p


def _tags_struct(tags: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    table = np.empty((len(tags), 1), dtype=[("ID", "O"), ("Offset", "O"), ("Value", "O")])
    for i, (tag, value) in enumerate(tags):
        table[i, 0] = (np.array([[tag]], dtype=np.uint16), np.array([[0]], dtype=np.uint8), np.atleast_2d(value))
    return table


def write_sidd_metadata(
    path: PathLike,
    *,
    cfa: str = "GRBG",
    iso: int = 100,
    exposure: float = 1 / 60,
    width: int = 64,
    height: int = 48,
    black_level: Union[int, Sequence[int]] = 0,
    white_level: int = 1023,
    noise_profile: Sequence[float] = (4.7946e-4, 0.0) * 3,
    as_shot_neutral: Sequence[float] = (0.55273438, 1.0, 0.484375),
    color_matrix1: Sequence[float] = S6_COLOR_MATRIX1,
    color_matrix2: Sequence[float] = S6_COLOR_MATRIX2,
    make: str = "samsung",
    model: str = "SM-G925I",
    orientation: int = 3,
    scene: Optional[str] = S6_SCENE,
    include_cfa: bool = True,
) -> Path:
    """Write a SIDD ``*_METADATA_RAW_*.MAT`` (MATLAB v5, struct ``metadata``).

    ``noise_profile`` is the flat tag 51041 value list ``(beta1, beta2) x colours``; ``scene``
    (the scene folder name) goes into ``Filename`` as in real SIDD files.
    """
    tile = np.array([[_COLOUR_INDEX[c] for c in cfa.upper()]], dtype=np.uint8)
    tags: list[tuple[int, np.ndarray]] = [(33421, np.array([[2, 2]], dtype=np.uint8))]
    if include_cfa:
        tags.append((33422, tile))
    tags += [
        (37398, np.array([[1, 0, 0, 0]], dtype=np.uint8)),
        (51041, np.array([noise_profile], dtype=np.float64)),
    ]
    black = np.atleast_2d(np.asarray(black_level)).astype(np.uint16)
    if black.size == 1:
        black = np.repeat(black, 4, axis=1)
    filename = f"D:\\_New_Dataset\\{scene}\\DNG\\DSC_0001.DNG" if scene else "DSC_0001.DNG"
    metadata = {
        "Filename": filename,
        "Width": np.array([[width]], dtype=np.uint16),
        "Height": np.array([[height]], dtype=np.uint16),
        "BitDepth": np.array([[16]], dtype=np.uint8),
        "ColorType": "CFA",
        "Orientation": np.array([[orientation]], dtype=np.uint8),
        "Make": make,
        "Model": model,
        "ExposureTime": np.array([[exposure]]),
        "ISOSpeedRatings": np.array([[iso]], dtype=np.uint16),
        "CFAPlaneColor": np.array([[0, 1, 2]], dtype=np.uint8),
        "BlackLevelRepeatDim": np.array([[2, 2]], dtype=np.uint8),
        "BlackLevel": black,
        "WhiteLevel": np.array([[white_level]], dtype=np.uint16),
        "ColorMatrix1": np.array([color_matrix1], dtype=np.float64),
        "ColorMatrix2": np.array([color_matrix2], dtype=np.float64),
        "AsShotNeutral": np.array([as_shot_neutral], dtype=np.float64),
        "CalibrationIlluminant1": np.array([[21]], dtype=np.uint8),
        "CalibrationIlluminant2": np.array([[17]], dtype=np.uint8),
        "ActiveArea": np.array([[0, 0, height, width]], dtype=np.uint16),
        "UnknownTags": _tags_struct(tags),
    }
    p = Path(path)
    scipy.io.savemat(str(p), {"metadata": metadata})
    return p


def _colour_planes(cfa: str) -> np.ndarray:
    """2x2 array of colour indices (0 R, 1 G, 2 B) of the tile."""
    return np.array([_COLOUR_INDEX[c] for c in cfa.upper()]).reshape(2, 2)


def make_scene_pair(
    rng: np.random.Generator,
    height: int,
    width: int,
    noise_profile: Sequence[float],
    cfa: str = "GRBG",
    variance_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth clean mosaic in ~[0.02, 0.95] and its noisy version.

    Noise at a site of colour ``c``: ``N(0, variance_scale * (beta1_c * x + beta2_c))`` with
    ``(beta1_c, beta2_c)`` from ``noise_profile`` (flat, one pair per colour R, G, B); the noisy
    mosaic is clipped to [0, 1] as SIDD's.

    Returns:
        ``(noisy, clean)``, float32 ``(height, width)`` each.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    clean = 0.02 + 0.93 * (0.5 * xx / (width - 1) + 0.3 * yy / (height - 1) + 0.2 * rng.random((height, width)))
    betas = np.asarray(noise_profile, dtype=np.float64).reshape(-1, 2)
    colour = np.tile(_colour_planes(cfa), (height // 2, width // 2))
    var = variance_scale * (betas[colour, 0] * clean + betas[colour, 1])
    noisy = np.clip(clean + np.sqrt(var) * rng.standard_normal(clean.shape), 0.0, 1.0)
    return noisy.astype(np.float32), clean.astype(np.float32)


def write_sidd_scene(
    data_dir: PathLike,
    name: str,
    noisy: np.ndarray,
    clean: np.ndarray,
    *,
    sets: Sequence[str] = ("010",),
    **metadata: object,
) -> Path:
    """Write one SIDD-Medium scene folder ``data_dir/name`` with NOISY/GT (v7.3) and METADATA (v5).

    Every set in ``sets`` gets the same images. ``metadata`` is passed to
    :func:`write_sidd_metadata` (``width``, ``height`` and ``scene`` are filled in).
    """
    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    instance = name.split("_")[0]
    fields = {"width": clean.shape[1], "height": clean.shape[0], "scene": name, **metadata}
    for set_id in sets:
        write_mat_v73(folder / f"{instance}_NOISY_RAW_{set_id}.MAT", {"x": np.asarray(noisy, dtype=np.float32)})
        write_mat_v73(folder / f"{instance}_GT_RAW_{set_id}.MAT", {"x": np.asarray(clean, dtype=np.float32)})
        write_sidd_metadata(folder / f"{instance}_METADATA_RAW_{set_id}.MAT", **fields)  # type: ignore[arg-type]
    return folder


def write_sidd_blocks(path: PathLike, blocks: np.ndarray, key: Optional[str] = None, v73: bool = False) -> Path:
    """Write validation/benchmark blocks ``(images, blocks, h, w)``; ``key`` defaults to the stem."""
    p = Path(path)
    name = key if key is not None else p.stem
    if v73:
        return write_mat_v73(p, {name: blocks})
    scipy.io.savemat(str(p), {name: blocks})
    return p


def write_block_positions(path: PathLike, positions: np.ndarray, key: str = "BenchmarkBlocks32") -> Path:
    """Write 1-based ``[row, col, height, width]`` rows as ``uint16`` (``BenchmarkBlocks32.mat``)."""
    p = Path(path)
    scipy.io.savemat(str(p), {key: np.asarray(positions, dtype=np.uint16)})
    return p
