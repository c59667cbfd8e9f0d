"""Published SIDD RAW-denoising scores, for the comparison table of the SIDD report.

Source: SSDNet (Zou & Zhang, "Learned Reverse ISP with Soft Supervision", AIM / ECCVW 2022),
Table 5: RAW PSNR/SSIM and sRGB PSNR/SSIM. The paper does not name the set; the numbers are the
ones CycleISP (Zamir et al., CVPR 2020) quotes for the **SIDD benchmark** (the online server's
scores on ``BenchmarkNoisyBlocksRaw``), so they are marked ``benchmark (per SSDNet Table 5)``.
Plus the NTIRE 2019 raw track result of Liu et al. (BayerUnify/BayerAug, arXiv 1904.12945).
RAW scores on the SIDD *validation* blocks for named methods were not found; numbers measured on
validation are therefore not strictly comparable (see the report's notes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

__all__ = ["PublishedScore", "PUBLISHED", "SSDNET_TABLE5_SPLIT", "published_rows"]

#: The split label of the SSDNet Table 5 rows.
SSDNET_TABLE5_SPLIT = "benchmark (per SSDNet Table 5)"

_SSDNET = "SSDNet (Zou & Zhang, AIM/ECCVW 2022) Table 5"


@dataclass(frozen=True)
class PublishedScore:
    """One published row.

    Attributes:
        method: method name as published.
        raw_psnr: RAW PSNR in dB.
        raw_ssim: RAW SSIM.
        srgb_psnr: sRGB PSNR in dB, or ``None`` when not published.
        srgb_ssim: sRGB SSIM, or ``None``.
        split: which SIDD blocks the number refers to.
        source: where it was published.
    """

    method: str
    raw_psnr: float
    raw_ssim: float
    srgb_psnr: Optional[float]
    srgb_ssim: Optional[float]
    split: str = SSDNET_TABLE5_SPLIT
    source: str = _SSDNET

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict with ``kind = "published"``."""
        return {"kind": "published", **asdict(self)}


def _row(method: str, rp: float, rs: float, sp: Optional[float], ss: Optional[float]) -> PublishedScore:
    return PublishedScore(method, rp, rs, sp, ss)


#: The published rows, in the order of SSDNet Table 5, then NTIRE 2019.
PUBLISHED: tuple[PublishedScore, ...] = (
    _row("EPLL", 40.73, 0.935, 25.19, 0.842),
    _row("GLIDE", 41.87, 0.949, 25.98, 0.816),
    _row("TNRD", 42.77, 0.945, 26.99, 0.744),
    _row("MLP", 43.17, 0.965, 27.52, 0.788),
    _row("KSVD", 43.26, 0.969, 27.41, 0.832),
    _row("NLM", 44.06, 0.971, 29.39, 0.846),
    _row("WNNM", 44.85, 0.975, 29.54, 0.888),
    _row("BM3D", 45.52, 0.980, 30.95, 0.863),
    _row("FoE", 45.78, 0.966, 35.99, 0.90),
    _row("DnCNN", 47.37, 0.976, 38.08, 0.935),
    _row("N3Net", 47.56, 0.976, 38.32, 0.938),
    _row("UPI", 48.89, 0.982, 40.17, 0.962),
    _row("CycleISP", 52.41, 0.990, 39.47, 0.918),
    _row("Learnable Dictionaries", 52.48, 0.990, None, None),
    _row("SSDNet", 51.73, 0.993, 39.33, 0.955),
    PublishedScore("Liu et al. BayerUnify/BayerAug U-Net", 52.11, 0.9969, None, None,
                   split="NTIRE 2019 raw track test", source="Liu et al., NTIRE 2019 (arXiv 1904.12945)"),
)


def published_rows() -> list[dict[str, Any]]:
    """The published rows as JSON-able dicts (``kind``, ``method``, scores, ``split``, ``source``)."""
    return [row.to_dict() for row in PUBLISHED]
