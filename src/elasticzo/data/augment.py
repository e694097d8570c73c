"""Training augmentation of point clouds (PointNet's recipe): a random rotation about the up axis (z) and a small
clipped Gaussian jitter per point. Every draw comes from (seed, epoch, batch index), so a resumed run sees the same
augmented batches as one never stopped, whatever the thread count."""

import numpy as np

AUGMENTATIONS = ("none", "pointcloud")
# PointNet's provider.py: jitter sigma 0.01 clipped to 0.05, rotation angle uniform in [0, 2 pi) about the up axis.
JITTER_SIGMA = 0.01
JITTER_CLIP = 0.05
_STREAM = 0x61756720  # keeps these draws apart from the batch order's default_rng([seed, epoch])


def check_augment(augment, sample_shape=None) -> str:
    """`augment` as a known name; ValueError if unknown or if the samples are not point clouds (points, 3)."""
    if augment is None or augment is False:
        return "none"
    if augment is True:
        augment = "pointcloud"
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if augment == "pointcloud" and sample_shape is not None and (len(sample_shape) != 2 or sample_shape[1] != 3):
        raise ValueError(f"augment 'pointcloud' needs point clouds (points, 3) with z up; the samples have shape "
                         f"{tuple(sample_shape)}")
    return augment


def augment_points(points: np.ndarray, seed: int, epoch: int, batch: int) -> np.ndarray:
    """A batch of point clouds (B, P, 3) float32, rotated about z by one angle per cloud and jittered per point.

    The result is a new float32 array; the draws depend only on (seed, epoch, batch) and the batch's shape."""
    if points.ndim != 3 or points.shape[2] != 3 or points.dtype != np.float32:
        raise ValueError(f"augment_points needs float32 point clouds (B, P, 3), got {points.dtype} {points.shape}")
    rng = np.random.default_rng([_STREAM, seed, epoch, batch])
    angle = rng.uniform(0.0, 2.0 * np.pi, size=len(points))
    jitter = np.clip(rng.normal(0.0, JITTER_SIGMA, size=points.shape), -JITTER_CLIP, JITTER_CLIP)
    c, s = np.cos(angle), np.sin(angle)
    x, y, z = (points[..., i].astype(np.float64) for i in range(3))
    out = np.empty(points.shape, np.float64)
    # x' = c x - s y, y' = s x + c y: a rotation about z, the up axis of ModelNet40 as stored
    out[..., 0] = c[:, None] * x - s[:, None] * y
    out[..., 1] = s[:, None] * x + c[:, None] * y
    out[..., 2] = z
    out += jitter
    return out.astype(np.float32)
