"""Compiled inner loops of the VibrantLeaves renderer (numba).

:mod:`raw_synth.corpora.vibrant` makes the per-image choices and hands the per-leaf and
per-pixel work to these loops:

* :func:`paint_leaves` draws leaves (radius, centre, shape: rotated disks, ellipses, rectangles,
  regular polygons) from a splitmix64 stream and paints them onto a label map, the first leaf to
  fall on a pixel staying on top (the dead-leaves occlusion rule); :func:`relabel` renumbers the
  visible ones;
* :func:`leaf_table` draws each visible leaf's look (pattern, two colours, shading ramp) from
  numpy's uniforms and normals;
* :func:`shade_layer` colours every pixel from its leaf's pattern (flat, linear or radial colour
  gradient, sinusoidal grating, or a 1/f noise texture), fine texture and shading ramp;
* :func:`blur_rows` / :func:`blur_columns` are a separable symmetric blur (lens PSF, defocus);
* :func:`compose` lays the near plane over the far one under a smooth illumination field.

Compiled functions are cached on disk (numba ``cache=True``); where numba finds no writable cache
folder they compile in every process instead.
"""

from __future__ import annotations

import math

import numpy as np

# One compile helper for both renderers: njit with the on-disk cache, or without it where numba finds no
# writable cache folder.
from raw_synth.corpora._deadleaves_kernels import _compiled

#: Label of a pixel that no leaf covers (leaf labels count from 0).
UNCOVERED = -1
#: Block side of the coverage summary used to skip leaves that land on covered regions.
BLOCK = 8

# Leaf shapes. Every shape lies inside the disk of radius ``r`` around its centre.
SHAPE_DISK = 0
SHAPE_ELLIPSE = 1
SHAPE_RECTANGLE = 2
SHAPE_POLYGON = 3

# Leaf patterns: how the colour varies between the leaf's two colours A and B.
PATTERN_FLAT = 0
PATTERN_LINEAR = 1
PATTERN_RADIAL = 2
PATTERN_GRATING = 3
PATTERN_NOISE = 4

# Columns of the per-leaf float32 table read by :func:`shade_layer`.
P_CY, P_CX = 0, 1  # leaf centre (pixels)
P_RAMP_Y, P_RAMP_X = 2, 3  # shading ramp slopes: brightness 1 + ry (y - cy) + rx (x - cx)
P_A = 4  # colour A, columns 4..6
P_B = 7  # colour B, columns 7..9
P_U, P_V = 10, 11  # pattern vector (gradient / grating wave vector / noise axis cos, sin)
P_T0, P_T1 = 12, 13  # pattern scalars (phase, contrast, inverse radius, anisotropy)
P_NOY, P_NOX = 14, 15  # offsets into the noise field
P_MICRO = 16  # amplitude of the fine noise texture added to every pattern
N_PARAMS = 17


# Columns of the per-leaf geometry table written by :func:`paint_leaves`.
G_CY, G_CX, G_R, G_KIND, G_ANGLE, G_ASPECT, G_SIDES, G_PIXELS = range(8)
N_GEOMETRY = 8
#: Most sides of a polygon leaf.
MAX_SIDES = 8


@_compiled
def _radius(u, rmin, rmax, alpha, lo, span):
    """Radius with density ``~ r**-alpha`` on [rmin, rmax] from a uniform ``u`` (inverse CDF);
    ``lo, span`` are ``rmin**(1 - alpha)`` and ``rmax**(1 - alpha) - lo``, computed once."""
    if rmax == rmin:
        return rmin
    if alpha == 1.0:
        return rmin * (rmax / rmin) ** u
    base = lo + u * span
    if alpha == 3.0:  # the scale-invariant default: base ** -0.5
        return 1.0 / math.sqrt(base)
    return base ** (1.0 / (1.0 - alpha))


@_compiled
def _edges(kind, r, c, s, aspect, sides, alpha_k, gamma_k):
    """Half-planes of a rectangle or polygon leaf: ``alpha_k dx + gamma_k dy <= d`` for each ``k``.

    The leaf frame is ``u = c dx + s dy``, ``v = (c dy - s dx) / aspect``; in it a rectangle is
    the square ``|u|, |v| <= r / sqrt(1 + aspect**2)`` (corners on the bounding circle) and a
    polygon is the regular ``sides``-gon inscribed in the circle of radius ``r``. Edge ``k`` has
    the outward normal ``(cos t, sin t)`` in that frame; returns ``(edge count, d)``.
    """
    if kind == SHAPE_RECTANGLE:
        n, offset, d = 4, 0.0, r / math.sqrt(1.0 + aspect * aspect)
    else:
        n, offset, d = sides, math.pi / sides, r * math.cos(math.pi / sides)
    for k in range(n):
        t = offset + 2.0 * math.pi * k / n
        ct, st = math.cos(t), math.sin(t)
        alpha_k[k] = c * ct - s * st / aspect
        gamma_k[k] = s * ct + c * st / aspect
    return n, d


@_compiled
def _row_span(kind, r, c, s, aspect, dy, n_edges, d, alpha_k, gamma_k):
    """``(lo, hi)``: the offsets ``dx`` from the centre where row ``dy`` is inside the leaf
    (``lo > hi`` when it misses). Every shape is convex, so a row meets it in one interval."""
    if kind == SHAPE_DISK or kind == SHAPE_ELLIPSE:
        # (c dx + s dy)**2 + ((c dy - s dx) / aspect)**2 <= r**2, a quadratic in dx.
        inv2 = 1.0 / (aspect * aspect)
        qa = c * c + s * s * inv2
        qb = 2.0 * c * s * dy * (1.0 - inv2)
        qc = dy * dy * (s * s + c * c * inv2) - r * r
        disc = qb * qb - 4.0 * qa * qc
        if disc < 0.0:
            return 1.0, -1.0
        root = math.sqrt(disc)
        return (-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa)
    lo, hi = -r, r
    for k in range(n_edges):
        a = alpha_k[k]
        rest = d - gamma_k[k] * dy
        if a > 1e-12:
            hi = min(hi, rest / a)
        elif a < -1e-12:
            lo = max(lo, rest / a)
        elif rest < 0.0:
            return 1.0, -1.0
    return lo, hi


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@_compiled
def _uniform(state):
    """Next double in [0, 1) of the splitmix64 stream held in ``state[0]`` (advanced)."""
    x = state[0] + _GOLDEN
    state[0] = x
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    x = x ^ (x >> np.uint64(31))
    return np.float64(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_compiled
def _block_sat(block_holes, sat):
    """Fill ``sat`` with the summed-area table of "this ``BLOCK`` x ``BLOCK`` block has a hole",
    from the per-row hole counts ``block_holes[y, j]`` of the columns ``j*BLOCK .. j*BLOCK+7``."""
    height, wb = block_holes.shape
    hb = sat.shape[0] - 1
    sat[:, :] = 0
    for y in range(height):
        for j in range(wb):
            if block_holes[y, j] > 0:
                sat[y // BLOCK + 1, j + 1] = 1
    for i in range(1, hb + 1):
        for j in range(1, wb + 1):
            sat[i, j] += sat[i - 1, j] + sat[i, j - 1] - sat[i - 1, j - 1]


@_compiled
def paint_leaves(labels, base, state, rmin, rmax, alpha, shape_codes, count, geometry):
    """Drop leaves onto ``labels`` in falling order, the first to land on a pixel staying on top.

    Args:
        labels: ``(H, W)`` int32, :data:`UNCOVERED` where no leaf has landed yet; modified.
        base: label of the first leaf kept by this call; kept leaves get ``base, base + 1, ...``.
        state: ``(1,)`` uint64 splitmix64 state that draws the leaves; advanced.
        rmin, rmax, alpha: the radius law ``p(r) ~ r**-alpha`` on [rmin, rmax].
        shape_codes: int64 ``SHAPE_*`` codes to draw from, equally likely.
        count: leaves to drop, or -1 to drop leaves until every pixel is covered.
        geometry: ``(capacity, N_GEOMETRY)`` float64 output, row ``i`` for kept leaf ``i``
            (columns ``G_*``; ``G_PIXELS`` counts the pixels it painted).

    Returns:
        ``(kept, dropped, done)``: leaves written to ``geometry``, leaves drawn (kept or not),
        and whether the job is finished; when ``geometry`` fills up first, call again with a
        fresh buffer, ``base + kept`` and ``count - dropped``.

    Each leaf draws a radius and a centre (uniform over the image grown by ``rmax``); a leaf whose
    box misses the image, or only meets blocks that had no hole at the last refresh of the
    block summary (refreshed once half the image is covered, then whenever a quarter of the
    remaining holes has been filled), is skipped: it could not paint anything. A kept leaf
    draws a shape, an aspect ratio (0.3 .. 1, disks 1, never under 2 px across the minor
    half-axis), polygon sides (3 .. 8) and a rotation, and takes every uncovered pixel whose
    centre it contains. Skipped leaves draw 3 numbers, kept ones 5: how leaves are skipped is
    part of the stream, so changing it changes the images.
    """
    height, width = labels.shape
    capacity = geometry.shape[0]
    wb = (width + BLOCK - 1) // BLOCK
    # Hole counts per row and per row stretch of BLOCK columns, kept up to date while painting.
    block_holes = np.zeros((height, wb), dtype=np.int64)
    row_holes = np.zeros(height, dtype=np.int64)
    for y in range(height):
        for x in range(width):
            if labels[y, x] < 0:
                block_holes[y, x // BLOCK] += 1
                row_holes[y] += 1
    uncovered = row_holes.sum()
    sat = np.zeros(((height + BLOCK - 1) // BLOCK + 1, wb + 1), dtype=np.int64)
    _block_sat(block_holes, sat)
    use_blocks = uncovered < height * width // 2
    at_refresh = uncovered
    alpha_k = np.empty(MAX_SIDES)
    gamma_k = np.empty(MAX_SIDES)
    n_codes = shape_codes.size
    law_lo = rmin ** (1.0 - alpha)
    law_span = rmax ** (1.0 - alpha) - law_lo
    n_kept = 0
    dropped = 0
    while n_kept < capacity:
        if (count < 0 and uncovered == 0) or (count >= 0 and dropped >= count):
            return n_kept, dropped, True
        if 4 * uncovered < 3 * at_refresh and uncovered < height * width // 2:
            _block_sat(block_holes, sat)
            use_blocks = True
            at_refresh = uncovered
        dropped += 1
        rk = _radius(_uniform(state), rmin, rmax, alpha, law_lo, law_span)
        cyk = -rmax + _uniform(state) * (height - 1 + 2.0 * rmax)
        cxk = -rmax + _uniform(state) * (width - 1 + 2.0 * rmax)
        y0 = int(max(math.ceil(cyk - rk), 0.0))
        y1 = int(min(math.floor(cyk + rk), height - 1.0))
        x0 = int(max(math.ceil(cxk - rk), 0.0))
        x1 = int(min(math.floor(cxk + rk), width - 1.0))
        if y0 > y1 or x0 > x1:
            continue
        if use_blocks:
            by0, by1 = y0 // BLOCK, y1 // BLOCK + 1
            bx0, bx1 = x0 // BLOCK, x1 // BLOCK + 1
            if sat[by1, bx1] - sat[by0, bx1] - sat[by1, bx0] + sat[by0, bx0] <= 0:
                continue
        scaled = _uniform(state) * n_codes
        pick = min(int(scaled), n_codes - 1)
        frac = scaled - pick
        kind = shape_codes[pick]
        # Squashed by 0.3 .. 1, but never thinner than 2 px across the minor half-axis.
        aspect = 1.0 if kind == SHAPE_DISK else max(0.3 + 0.7 * frac, min(1.0, 2.0 / rk))
        sides = 3 + int(frac * 997.0) % (MAX_SIDES - 2)
        angle = math.pi * _uniform(state)
        c, s = math.cos(angle), math.sin(angle)
        n_edges, d = 0, 0.0
        if kind == SHAPE_RECTANGLE or kind == SHAPE_POLYGON:
            n_edges, d = _edges(kind, rk, c, s, aspect, sides, alpha_k, gamma_k)
        label = base + n_kept
        painted = 0
        for y in range(y0, y1 + 1):
            if row_holes[y] == 0:
                continue
            dy = y - cyk
            lo, hi = _row_span(kind, rk, c, s, aspect, dy, n_edges, d, alpha_k, gamma_k)
            xa = max(x0, int(math.ceil(cxk + lo)))
            xb = min(x1, int(math.floor(cxk + hi)))
            for j in range(xa // BLOCK, xb // BLOCK + 1):
                if block_holes[y, j] == 0:  # this stretch of the row is covered already
                    continue
                found = 0
                for x in range(max(xa, j * BLOCK), min(xb, j * BLOCK + BLOCK - 1) + 1):
                    if labels[y, x] < 0:
                        labels[y, x] = label
                        found += 1
                block_holes[y, j] -= found
                row_holes[y] -= found
                painted += found
        uncovered -= painted
        geometry[n_kept, G_CY] = cyk
        geometry[n_kept, G_CX] = cxk
        geometry[n_kept, G_R] = rk
        geometry[n_kept, G_KIND] = kind
        geometry[n_kept, G_ANGLE] = angle
        geometry[n_kept, G_ASPECT] = aspect
        geometry[n_kept, G_SIDES] = sides
        geometry[n_kept, G_PIXELS] = painted
        n_kept += 1
    return n_kept, dropped, (count < 0 and uncovered == 0) or (count >= 0 and dropped >= count)


@_compiled
def relabel(labels, mapping):
    """``labels[...] = mapping[labels]`` in place for covered pixels (drops leaves never seen)."""
    height, width = labels.shape
    for y in range(height):
        for x in range(width):
            leaf = labels[y, x]
            if leaf >= 0:
                labels[y, x] = mapping[leaf]


# Luminance law of the leaf colours: Kumaraswamy(1.325, 2.365), within 0.003 (every quantile)
# of Beta(1.4, 2.3), the luminance statistics of the bundled sample photos, with a closed-form
# inverse CDF. Opponent chroma standard deviations, red-green and yellow-blue (relative to it).
LUMA_A, LUMA_B = 1.325, 2.365
CHROMA_SD_RG, CHROMA_SD_YB = 0.25, 0.35


@_compiled
def _colour(u, z_rg, z_yb, palette, out, offset):
    """Write one natural-looking sRGB colour to ``out[offset:offset + 3]``.

    ``palette`` is ``(cast_rg, cast_yb, saturation, gamma)``: chroma is Gaussian around a
    per-image cast, scaled by a per-image saturation; the result is clipped to [0, 1] and raised
    to the per-image tone exponent.
    """
    luma = (1.0 - (1.0 - u) ** (1.0 / LUMA_B)) ** (1.0 / LUMA_A)
    rg = palette[2] * (CHROMA_SD_RG * z_rg + palette[0])
    yb = palette[2] * (CHROMA_SD_YB * z_yb + palette[1])
    mix_r = rg / 2.0 + yb / 3.0
    mix_g = -rg / 2.0 + yb / 3.0
    mix_b = -2.0 * yb / 3.0
    out[offset] = min(max(luma * (1.0 + mix_r), 0.0), 1.0) ** palette[3]
    out[offset + 1] = min(max(luma * (1.0 + mix_g), 0.0), 1.0) ** palette[3]
    out[offset + 2] = min(max(luma * (1.0 + mix_b), 0.0), 1.0) ** palette[3]


@_compiled
def leaf_table(geometry, u, z, palette, pattern_cdf, field_side, kind, table):
    """Draw the look of each leaf: pattern, two colours, shading ramp, texture parameters.

    Args:
        geometry: ``(n, N_GEOMETRY)`` float64 leaves (columns ``G_*``).
        u: ``(13, n)`` float64 uniforms in [0, 1), z: ``(4, n)`` float64 standard normals.
        palette: float64 ``(cast_rg, cast_yb, saturation, gamma)`` of the image.
        pattern_cdf: float64 ``(5,)`` cumulative probabilities of the ``PATTERN_*`` codes.
        field_side: side of the noise field (offsets into it are drawn in ``0 .. side - 1``).
        kind: int64 ``(n,)`` output pattern codes.
        table: ``(n, N_PARAMS)`` float32 output (columns ``P_*``), read by :func:`shade_layer`.
    """
    n = geometry.shape[0]
    row = np.zeros(N_PARAMS)
    two_pi = 2.0 * math.pi
    for i in range(n):
        r = geometry[i, G_R]
        pattern = 0
        while pattern < PATTERN_NOISE and u[0, i] >= pattern_cdf[pattern]:
            pattern += 1
        kind[i] = pattern
        row[:] = 0.0
        row[P_CY] = geometry[i, G_CY]
        row[P_CX] = geometry[i, G_CX]
        ramp = 0.25 * u[1, i] / r
        row[P_RAMP_Y] = ramp * math.sin(two_pi * u[2, i])
        row[P_RAMP_X] = ramp * math.cos(two_pi * u[2, i])
        _colour(u[3, i], z[0, i], z[1, i], palette, row, P_A)
        if u[4, i] < 0.6:  # the same material in another light
            gain = math.exp(1.2 * (u[5, i] - 0.5))
            for c in range(3):
                row[P_B + c] = min(row[P_A + c] * gain, 1.0)
        else:  # an unrelated colour
            _colour(u[5, i], z[2, i], z[3, i], palette, row, P_B)
        cos_d = math.cos(two_pi * u[6, i])
        sin_d = math.sin(two_pi * u[6, i])
        if pattern == PATTERN_LINEAR:  # t runs 0 .. 1 across the leaf's diameter
            row[P_U] = sin_d / (2.0 * r)
            row[P_V] = cos_d / (2.0 * r)
        elif pattern == PATTERN_RADIAL:  # centre near the leaf's, t = 1 at 0.7 .. 1.5 radii
            row[P_U] = (u[7, i] - 0.5) * r
            row[P_V] = (u[8, i] - 0.5) * r
            row[P_T0] = 1.0 / (r * (0.7 + 0.8 * u[9, i]))
        elif pattern == PATTERN_GRATING:  # period 3 px .. the diameter; contrast sine .. stripes
            period = 3.0 * max(2.0 * r / 3.0, 1.0) ** u[7, i]
            wave = two_pi / period
            row[P_U] = wave * sin_d
            row[P_V] = wave * cos_d
            row[P_T0] = two_pi * u[8, i]
            row[P_T1] = 0.5 * 4.0 ** u[9, i]
        elif pattern == PATTERN_NOISE:  # magnified 1 .. 4x, half of them stretched
            zoom = 4.0 ** -u[7, i]
            row[P_U] = zoom * cos_d
            row[P_V] = zoom * sin_d
            row[P_T1] = 1.0 if u[8, i] < 0.5 else 0.15 + 0.85 * u[9, i]
        row[P_NOY] = math.floor(field_side * u[10, i])
        row[P_NOX] = math.floor(field_side * u[11, i])
        if u[12, i] < 0.5:  # fine texture on half of the leaves
            row[P_MICRO] = 0.3 * u[12, i]
        for j in range(N_PARAMS):
            table[i, j] = row[j]


@_compiled
def _noise_at(field, fy, fx):
    """Bilinear sample of the periodic square ``field`` (side a power of two) at ``(fy, fx)``."""
    side = field.shape[0]
    mask = side - 1
    y0 = math.floor(fy)
    x0 = math.floor(fx)
    ty = fy - y0
    tx = fx - x0
    iy = int(y0) & mask
    ix = int(x0) & mask
    iy1 = (iy + 1) & mask
    ix1 = (ix + 1) & mask
    top = field[iy, ix] + (field[iy, ix1] - field[iy, ix]) * tx
    bottom = field[iy1, ix] + (field[iy1, ix1] - field[iy1, ix]) * tx
    return top + (bottom - top) * ty


@_compiled
def shade_layer(labels, kind, table, field, img, alpha):
    """Colour every covered pixel from its leaf's pattern; see :mod:`raw_synth.corpora.vibrant`.

    Args:
        labels: ``(H, W)`` int32 leaf per pixel, :data:`UNCOVERED` for none.
        kind: int64 ``(n,)`` pattern codes (``PATTERN_*``).
        table: ``(n, N_PARAMS)`` float32 leaf parameters (columns ``P_*``).
        field: ``(S, S)`` float32 periodic noise texture, zero mean, unit variance.
        img: ``(H, W, 3)`` float32 output, written where covered, 0 elsewhere.
        alpha: ``(H, W)`` float32 output, 1 where covered, 0 elsewhere.

    The pattern value ``t`` mixes the two colours, ``A + (B - A) t``, times the shading ramp.
    """
    height, width = labels.shape
    mask = field.shape[0] - 1
    for y in range(height):
        for x in range(width):
            leaf = labels[y, x]
            if leaf < 0:
                for ch in range(3):
                    img[y, x, ch] = 0.0
                alpha[y, x] = 0.0
                continue
            p = table[leaf]
            dy = y - p[P_CY]
            dx = x - p[P_CX]
            pattern = kind[leaf]
            t = 0.0
            if pattern == PATTERN_LINEAR:
                t = 0.5 + p[P_U] * dy + p[P_V] * dx
            elif pattern == PATTERN_RADIAL:
                ry = dy - p[P_U]
                rx = dx - p[P_V]
                t = math.sqrt(ry * ry + rx * rx) * p[P_T0]
            elif pattern == PATTERN_GRATING:
                t = 0.5 + p[P_T1] * math.sin(p[P_U] * dy + p[P_V] * dx + p[P_T0])
            elif pattern == PATTERN_NOISE:
                along = p[P_U] * dx + p[P_V] * dy
                across = (p[P_U] * dy - p[P_V] * dx) * p[P_T1]
                t = 0.5 + 0.3 * _noise_at(field, along + p[P_NOY], across + p[P_NOX])
            if p[P_MICRO] != 0.0:
                t += p[P_MICRO] * field[(y + int(p[P_NOY])) & mask, (x + int(p[P_NOX])) & mask]
            t = min(max(t, 0.0), 1.0)
            ramp = 1.0 + p[P_RAMP_Y] * dy + p[P_RAMP_X] * dx
            for ch in range(3):
                a = p[P_A + ch]
                img[y, x, ch] = (a + (p[P_B + ch] - a) * t) * ramp
            alpha[y, x] = 1.0


@_compiled
def _mirror(i, n):
    """Index ``i`` folded into ``0..n-1`` by mirroring with the edge repeated (scipy ``reflect``)."""
    period = 2 * n
    i = i % period
    if i < 0:
        i += period
    return i if i < n else period - 1 - i


@_compiled
def blur_rows(src, taps):
    """Symmetric blur along axis 0 of a float32 ``(H, M)`` array, mirrored edges (any ``H``).

    ``out[y] = src[y] * taps[0] + sum_j (src[y - j] + src[y + j]) * taps[j]``.
    """
    height, m = src.shape
    radius = taps.size - 1
    out = np.empty_like(src)
    for y in range(height):
        o = out[y]
        centre = src[y]
        t0 = taps[0]
        for i in range(m):
            o[i] = centre[i] * t0
        for j in range(1, radius + 1):
            above = src[_mirror(y - j, height)]
            below = src[_mirror(y + j, height)]
            tj = taps[j]
            for i in range(m):
                o[i] += (above[i] + below[i]) * tj
    return out


@_compiled
def blur_columns(src, taps):
    """:func:`blur_rows` along axis 1 of a float32 ``(H, W, C)`` array (any ``W``)."""
    height, width, ch = src.shape
    radius = taps.size - 1
    m = width * ch
    base = radius * ch
    rows = src.reshape(height, m)
    out = np.empty((height, m), dtype=np.float32)
    padded = np.empty(m + 2 * base, dtype=np.float32)  # one row with mirrored margins
    acc = np.empty(m, dtype=np.float32)  # a separate sum buffer lets the loops vectorise
    for y in range(height):
        padded[base : base + m] = rows[y]
        for j in range(1, radius + 1):
            left = _mirror(-j, width) * ch
            right = _mirror(width - 1 + j, width) * ch
            for c in range(ch):
                padded[base - j * ch + c] = rows[y, left + c]
                padded[base + m + (j - 1) * ch + c] = rows[y, right + c]
        t0 = taps[0]
        for i in range(m):
            acc[i] = padded[base + i] * t0
        for j in range(1, radius + 1):
            tj = taps[j]
            before = padded[base - j * ch : base - j * ch + m]
            after = padded[base + j * ch : base + j * ch + m]
            for i in range(m):
                acc[i] += (before[i] + after[i]) * tj
        out[y] = acc
    return out.reshape(height, width, ch)


@_compiled
def compose(far, near, coverage, illum):
    """``(near + (1 - coverage) * far) * light(y, x)``, in place in ``far``; returns ``far``.

    Args:
        far: ``(H, W, 3)`` float32 far plane (fully covered).
        near: ``(H, W, 3)`` float32 near plane, premultiplied by its coverage.
        coverage: ``(H, W, 1)`` float32 near-plane coverage in [0, 1].
        illum: float64 ``(5,)`` ``(g0, gy, gx, vig, gain)``: the light is
            ``(g0 + gy * v + gx * u) * (1 - vig * (u*u + v*v)) * gain`` with ``u, v`` running
            over [-1, 1] across the width and the height.
    """
    height, width, _ = far.shape
    g0, gy, gx, vig, gain = illum[0], illum[1], illum[2], illum[3], illum[4]
    sy = 2.0 / max(height - 1, 1)
    sx = 2.0 / max(width - 1, 1)
    for y in range(height):
        v = y * sy - 1.0
        for x in range(width):
            u = x * sx - 1.0
            light = np.float32((g0 + gy * v + gx * u) * (1.0 - vig * (u * u + v * v)) * gain)
            keep = 1.0 - coverage[y, x, 0]
            for c in range(3):
                far[y, x, c] = (near[y, x, c] + keep * far[y, x, c]) * light
    return far
