"""The orientation estimator (3-DoF): satellite tile + top-down view of the panorama -> heading class.

Headings are degrees clockwise from north of the panorama's centre line (``keys.HEADING_GT``).
The estimator classifies them into ``K = 2 * range_deg / bin_deg`` bins; class ``k`` covers
``[k * bin - range, (k + 1) * bin - range)`` and decodes to that bin's centre. With
``range_deg = 180`` the bins cover the whole circle and headings wrap.

A panorama whose centre line faces heading ``h`` becomes north-aligned with
``roll_panorama(pano, -h)`` (:func:`align_panorama_to_north`), since
``roll_panorama(pano, delta)`` is the view after the camera turns clockwise by ``delta``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from geodistill import keys
from geodistill.config import OrientationConfig
from geodistill.geometry.bev import topdown_view
from geodistill.geometry.panorama import roll_panorama
from geodistill.losses import gaussian_soft_labels, orientation_loss
from geodistill.models.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone

logger = logging.getLogger("geodistill.models.orientation")



class HeadingBins:
    """Exact encode/decode between headings in degrees and classes, plus Gaussian soft labels.

    Args:
        range_deg: half range; headings cover [-range_deg, range_deg). 180 means the full circle.
        bin_deg: class width in degrees; ``2 * range_deg / bin_deg`` must be an integer.
    """

    def __init__(self, range_deg: float = 45.0, bin_deg: float = 1.0):
        if not 0.0 < range_deg <= 180.0:
            raise ValueError(f"orientation range_deg must be in (0, 180], got {range_deg}")
        if bin_deg <= 0.0:
            raise ValueError(f"orientation bin_deg must be positive, got {bin_deg}")
        count = 2.0 * range_deg / bin_deg
        if abs(count - round(count)) > 1e-6:
            raise ValueError(f"2 * range_deg / bin_deg = {count} is not a whole number of classes")
        self.range_deg = float(range_deg)
        self.bin_deg = float(bin_deg)
        self.num_classes = int(round(count))
        self.full_circle = abs(range_deg - 180.0) < 1e-9

    def wrap(self, heading_deg: torch.Tensor) -> torch.Tensor:
        """Bring headings into [-180, 180) on the full circle; identity for a limited range."""
        if self.full_circle:
            return torch.remainder(heading_deg + 180.0, 360.0) - 180.0
        return heading_deg

    def encode(self, heading_deg: torch.Tensor) -> torch.Tensor:
        """Class index of each heading.

        Args:
            heading_deg: (...) headings in degrees.

        Returns:
            (...) int64 classes in [0, K).

        Raises:
            ValueError: a heading outside [-range_deg, range_deg] on a limited range.
        """
        heading_deg = self.wrap(torch.as_tensor(heading_deg, dtype=torch.float64))
        if not self.full_circle:
            outside = heading_deg.abs() > self.range_deg + 1e-6
            if bool(outside.any()):
                worst = float(heading_deg[outside].abs().max())
                raise ValueError(
                    f"heading {worst:.2f} deg is outside the estimator's range of +-{self.range_deg:g} deg"
                )
        classes = torch.floor((heading_deg + self.range_deg) / self.bin_deg).long()
        return classes.clamp(0, self.num_classes - 1)

    def decode(self, classes: torch.Tensor) -> torch.Tensor:
        """Heading at the centre of each class's bin, degrees (float32, same shape)."""
        classes = torch.as_tensor(classes)
        return ((classes.double() + 0.5) * self.bin_deg - self.range_deg).float()

    def soft_labels(self, heading_deg: torch.Tensor, sigma_bins: float = 1.0) -> torch.Tensor:
        """Gaussian soft labels ``q_k ∝ exp(-(k - y)^2 / (2 sigma^2))`` centred on the heading itself.

        ``y = (heading + range) / bin - 0.5`` is the heading's continuous position in class units, so a
        heading at a bin centre puts the peak exactly on that class and the most likely class is always
        :meth:`encode` of the heading. Distances wrap around on the full circle.

        Args:
            heading_deg: (B,) headings in degrees.
            sigma_bins: Gaussian width in classes.

        Returns:
            (B, K) float32 probabilities summing to one per row.
        """
        if sigma_bins <= 0.0:
            raise ValueError(f"soft-label sigma must be positive, got {sigma_bins}")
        heading_deg = self.wrap(torch.as_tensor(heading_deg, dtype=torch.float32).reshape(-1))
        position = (heading_deg + self.range_deg) / self.bin_deg - 0.5  # B, in classes
        return gaussian_soft_labels(position, self.num_classes, sigma_bins, circular=self.full_circle)


def align_panorama_to_north(pano: torch.Tensor, heading_deg: torch.Tensor | float) -> torch.Tensor:
    """Roll panoramas back so that their centre lines face north.

    Args:
        pano: (B, C, H, W) panoramas whose centre lines face ``heading_deg``.
        heading_deg: (B,) or scalar heading, degrees clockwise from north.

    Returns:
        (B, C, H, W) north-aligned panoramas (fractional column shifts interpolated).
    """
    return rotate_panoramas(pano, -torch.as_tensor(heading_deg, dtype=torch.float32))


def rotate_panoramas(pano: torch.Tensor, delta_deg: torch.Tensor | float) -> torch.Tensor:
    """The view after each camera turns clockwise by its delta (``roll_panorama`` with one angle per sample).

    Args:
        pano: (B, C, H, W) panoramas.
        delta_deg: (B,) or scalar clockwise turn in degrees.

    Returns:
        (B, C, H, W) rolled panoramas; their headings grow by ``delta_deg``.
    """
    delta = torch.as_tensor(delta_deg, dtype=torch.float32, device=pano.device).reshape(-1)
    if delta.numel() not in (1, pano.shape[0]):
        raise ValueError(f"{delta.numel()} angles for a batch of {pano.shape[0]} panoramas")
    return roll_panorama(pano, delta)


def random_yaw(batch_size: int, range_deg: float, generator: torch.Generator) -> torch.Tensor:
    """Yaw perturbations drawn uniformly in [-range_deg, range_deg), float32 (B,)."""
    return (torch.rand(batch_size, generator=generator) * 2.0 - 1.0) * range_deg


class OrientationEstimator(nn.Module):
    """Heading classifier over a satellite tile and the top-down view of a panorama.

    Two separate encoders from the backbone factory (their last tap: stride 32, 320 channels for
    EfficientNet-Lite0, whose stride-32 stage ends after the 192-channel block of the reference) read
    the satellite tile and the image-level BEV (``geometry.bev.topdown_view``), both resized to
    ``input_size`` and normalised with ImageNet statistics. Their features are concatenated,
    fused by conv3x3 + BatchNorm + ReLU, flattened and classified by an MLP into heading bins.

    Args:
        config: the ``OrientationConfig``.
    """

    required_data_keys = (keys.PANO, keys.SAT)

    def __init__(self, config: OrientationConfig):
        super().__init__()
        self.config = config
        self.bins = HeadingBins(config.range_deg, config.bin_deg)
        self.sat_encoder = self._build_encoder()
        self.topdown_encoder = self._build_encoder()
        multiple = int(getattr(self.sat_encoder, "input_multiple", 1))
        if config.input_size % multiple:
            raise ValueError(
                f"orientation.input_size={config.input_size} must be a multiple of {multiple} for backbone {config.backbone!r}"
            )
        channels = int(self.sat_encoder.channels[-1])
        side_h, side_w = self._feature_size()
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        widths = [channels * side_h * side_w, *config.hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(widths[-1], self.bins.num_classes))
        self.classifier = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _build_encoder(self) -> nn.Module:
        config = self.config
        return build_backbone(
            config.backbone,
            pretrained=config.pretrained,
            weights_path=config.weights_path,
            allow_random_init=config.allow_random_init,
        )

    @torch.no_grad()
    def _feature_size(self) -> tuple[int, int]:
        was_training = self.sat_encoder.training
        self.sat_encoder.eval()
        size = self.config.input_size
        feature = self.sat_encoder(torch.zeros(1, 3, size, size))[-1]
        self.sat_encoder.train(was_training)
        return int(feature.shape[-2]), int(feature.shape[-1])

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter: both encoders are fine-tuned with the head."""
        return [p for p in self.parameters() if p.requires_grad]

    def prepare_inputs(self, pano: torch.Tensor, sat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-down view of the panorama and the resized tile, both (B, 3, S, S) in [0, 1]."""
        size = self.config.input_size
        topdown = topdown_view(pano, size, fov_deg=self.config.topdown_fov_deg)
        if sat.shape[-2:] != (size, size):
            sat = F.interpolate(sat, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return topdown, sat

    def forward(self, data: dict) -> dict:
        """Predict the heading of each panorama's centre line.

        | key              | in/out | shape        | meaning |
        |------------------|--------|--------------|---------|
        | ``pano``         | in     | (B,3,Hp,Wp)  | panorama in [0, 1] |
        | ``sat``          | in     | (B,3,S,S)    | north-up tile in [0, 1] |
        | ``heading_logits`` | out  | (B,K)        | class logits |
        | ``heading``      | out    | (B,)         | decoded heading (bin centre of the argmax), degrees |
        """
        missing = [key for key in self.required_data_keys if key not in data]
        if missing:
            raise KeyError(f"OrientationEstimator needs {missing} in its input")
        pano, sat = data[keys.PANO], data[keys.SAT]
        if pano.ndim != 4 or sat.ndim != 4 or pano.shape[1] != 3 or sat.shape[1] != 3:
            raise ValueError(f"expected pano (B,3,H,W) and sat (B,3,S,S), got {tuple(pano.shape)}, {tuple(sat.shape)}")
        topdown, sat = self.prepare_inputs(pano, sat)
        f_sat = self.sat_encoder((sat - self.mean) / self.std)[-1]
        f_topdown = self.topdown_encoder((topdown - self.mean) / self.std)[-1]
        fused = self.fuse(torch.cat([f_sat, f_topdown], dim=1))  # B,C,h,w
        logits = self.classifier(fused)  # B,K
        return {keys.HEADING_LOGITS: logits, keys.HEADING: self.bins.decode(logits.argmax(dim=-1))}

    def loss(self, pred: dict, data: dict) -> dict:
        """Soft-label cross-entropy against ``data["heading_gt"]``: per-sample ``orientation`` (B,) and ``total``."""
        soft = self.bins.soft_labels(data[keys.HEADING_GT], self.config.sigma_bins).to(pred[keys.HEADING_LOGITS].device)
        return orientation_loss(pred[keys.HEADING_LOGITS], soft)
