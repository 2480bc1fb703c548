"""Rasterise a posed scene into per-material path-length maps (pixels of beam path per pixel).

Each bone is evaluated only inside its bounding box. Within a bone the parts are united by
taking the maximum chord, so an epiphysis merging into a shaft does not double the density,
while different bones that overlap in projection add up, as they do on a radiograph.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import Primitive
from .lesions import Fracture, Implant, Lesion, _soft_step
from .scene import Bone, Scene

Finding = Fracture | Lesion | Implant
Chords = tuple[np.ndarray, np.ndarray, np.ndarray]  # outer, inner, cancellous-inner
SOFT_SCALE = 64.0  # keeps the fourth powers of soft-tissue chords within float32 range
FOOTPRINT_MIN = 0.75  # px of bone chord that counts as "bone" in the anatomy mask


@dataclass
class PathMaps:
    """Path lengths (px) through each material, plus masks, for a size x size image."""

    soft: np.ndarray
    cortical: np.ndarray
    trabecular: np.ndarray
    marrow: np.ndarray
    dense: np.ndarray
    metal: np.ndarray
    bone_mask: np.ndarray
    finding_masks: list[np.ndarray]
    host_masks: list[np.ndarray]
    osteophyte_mask: np.ndarray
    joint_mask: np.ndarray


def _window(
    box: tuple[float, float, float, float], size: int, pad: float = 1.0
) -> tuple[int, int, int, int] | None:
    x0 = max(int(np.floor(box[0] - pad)), 0)
    y0 = max(int(np.floor(box[1] - pad)), 0)
    x1 = min(int(np.ceil(box[2] + pad)), size)
    y1 = min(int(np.ceil(box[3] + pad)), size)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _grid(win: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = win
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
    return xs, ys


def _is_cancellous(part: Primitive) -> bool:
    return part.inner >= 0.75


def _eval_local(bone: Bone, win: tuple[int, int, int, int], size: int) -> Chords:
    """Outer, inner and cancellous-inner chords of a bone on its window, part by part."""
    x0, y0, x1, y1 = win
    h, w = y1 - y0, x1 - x0
    outer = np.zeros((h, w), np.float32)
    inner = np.zeros((h, w), np.float32)
    canc = np.zeros((h, w), np.float32)
    for part in bone.parts:
        sub = _window(part.bbox(), size)
        if sub is None:
            continue
        sx0, sy0 = max(sub[0], x0), max(sub[1], y0)
        sx1, sy1 = min(sub[2], x1), min(sub[3], y1)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        xs, ys = _grid((sx0, sy0, sx1, sy1))
        o, i = part.chords(xs, ys)
        sl = np.s_[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
        np.maximum(outer[sl], o, out=outer[sl])
        np.maximum(inner[sl], i, out=inner[sl])
        if _is_cancellous(part):
            np.maximum(canc[sl], i, out=canc[sl])
    return outer, inner, canc


def _eval_at(bone: Bone, xs: np.ndarray, ys: np.ndarray) -> Chords:
    """Same as `_eval_local` but at arbitrary (transformed) coordinates."""
    shape = np.broadcast_shapes(xs.shape, ys.shape)
    outer = np.zeros(shape, np.float32)
    inner = np.zeros(shape, np.float32)
    canc = np.zeros(shape, np.float32)
    for part in bone.parts:
        o, i = part.chords(xs, ys)
        np.maximum(outer, o, out=outer)
        np.maximum(inner, i, out=inner)
        if _is_cancellous(part):
            np.maximum(canc, i, out=canc)
    return outer, inner, canc


def _fractured(
    bone: Bone, frac: Fracture, win: tuple[int, int, int, int], size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chords of a broken bone: a lucent gap, the distal fragment possibly displaced."""
    xs, ys = _grid(win)
    o, i, c = _eval_local(bone, win, size)
    side = frac.side(xs, ys)
    half = frac.width / 2
    w_prox = _soft_step(-side - half)
    if frac.displaced:
        sx, sy = frac.to_source(xs, ys)
        od, idd, cd = _eval_at(bone, sx, sy)
        w_dist = _soft_step(frac.side(sx, sy) - half)
        footprint = o > FOOTPRINT_MIN
        return (
            w_prox * o + w_dist * od,
            w_prox * i + w_dist * idd,
            w_prox * c + w_dist * cd,
            footprint,
            side,
        )
    keep = 1.0 - frac.depth * (1.0 - w_prox - _soft_step(side - half))
    return o * keep, i * keep, c * keep, o > FOOTPRINT_MIN, side


def _fracture_mask(frac: Fracture, side: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    band = np.abs(side) <= max(frac.width / 2, 1.0) + 0.5
    grown = cv2.dilate(footprint.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return band & grown


def render_paths(
    scene: Scene, size: int, findings: list[Finding], dense_extra: float = 1.0
) -> PathMaps:
    """Rasterise bones, soft tissue, findings and implants into path-length maps."""
    shape = (size, size)
    maps = {
        k: np.zeros(shape, np.float32)
        for k in ("soft", "cortical", "trabecular", "marrow", "dense", "metal")
    }
    bone_mask = np.zeros(shape, bool)
    fmasks = [np.zeros(shape, bool) for _ in findings]
    hosts = [np.zeros(shape, bool) for _ in findings]
    osteo = np.zeros(shape, bool)
    joint = np.zeros(shape, bool)

    for q in scene.soft:
        win = _window(q.bbox(), size)
        if win is None:
            continue
        o, _ = q.chords(*_grid(win))
        sl = np.s_[win[1] : win[3], win[0] : win[2]]
        o *= 1.0 / SOFT_SCALE
        maps["soft"][sl] += (o * o) ** 2  # a p-norm union blends overlapping envelopes smoothly

    np.sqrt(np.sqrt(maps["soft"], out=maps["soft"]), out=maps["soft"])
    maps["soft"] *= SOFT_SCALE
    for bone in scene.bones:
        fracs = [
            (k, f)
            for k, f in enumerate(findings)
            if isinstance(f, Fracture) and f.bone == bone.name
        ]
        box = bone.bbox()
        if fracs:
            m = fracs[0][1].margin()
            box = (box[0] - m, box[1] - m, box[2] + m, box[3] + m)
        win = _window(box, size)
        if win is None:
            continue
        sl = np.s_[win[1] : win[3], win[0] : win[2]]
        if fracs:
            k, frac = fracs[0]
            o, i, c, footprint, side = _fractured(bone, frac, win, size)
            fmasks[k][sl] |= _fracture_mask(frac, side, footprint)
            hosts[k][sl] |= footprint  # the unbroken bone, so the line can be checked against it
        else:
            o, i, c = _eval_local(bone, win, size)
        cort = np.maximum(o - i, 0.0)
        trab = c
        marrow = np.maximum(i - c, 0.0)
        extra = np.zeros_like(o)
        for q in bone.extras:
            eo, _ = q.chords(*_grid(win))
            extra += eo * dense_extra
        own = o > FOOTPRINT_MIN
        for k, f in enumerate(findings):
            if f.bone != bone.name:
                continue
            if not isinstance(f, Fracture):
                hosts[k][sl] |= own
            if isinstance(f, Lesion):
                lw = _window(f.box(), size)
                if lw is None:
                    continue
                lx0, ly0 = max(lw[0], win[0]), max(lw[1], win[1])
                lx1, ly1 = min(lw[2], win[2]), min(lw[3], win[3])
                if lx1 <= lx0 or ly1 <= ly0:
                    continue
                ls = np.s_[ly0 - win[1] : ly1 - win[1], lx0 - win[0] : lx1 - win[0]]
                xs, ys = _grid((lx0, ly0, lx1, ly1))
                weight = f.apply(xs, ys, cort[ls], trab[ls], marrow[ls], extra[ls])
                inside = (weight > 0.3) & own[ls]
                inside = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                fmasks[k][ly0:ly1, lx0:lx1] |= inside
        maps["cortical"][sl] += cort
        maps["trabecular"][sl] += trab
        maps["marrow"][sl] += marrow
        maps["dense"][sl] += extra
        bone_mask[sl] |= own
        for part in bone.parts:
            if part.tag == "osteophyte":
                pw = _window(part.bbox(), size)
                if pw is not None:
                    po, _ = part.chords(*_grid(pw))
                    osteo[pw[1] : pw[3], pw[0] : pw[2]] |= po > FOOTPRINT_MIN

    for q in scene.joints:
        win = _window(q.bbox(), size)
        if win is not None:
            o, _ = q.chords(*_grid(win))
            joint[win[1] : win[3], win[0] : win[2]] |= o > 0

    for k, f in enumerate(findings):
        if isinstance(f, Implant):
            win = _window(f.box(), size)
            if win is None:
                continue
            metal = f.metal(*_grid(win))
            maps["metal"][win[1] : win[3], win[0] : win[2]] += metal
            fmasks[k][win[1] : win[3], win[0] : win[2]] |= metal > 0.5
    return PathMaps(
        bone_mask=bone_mask,
        finding_masks=fmasks,
        host_masks=hosts,
        osteophyte_mask=osteo,
        joint_mask=joint,
        **maps,
    )
