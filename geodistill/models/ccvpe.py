"""The CCVPE base (``model.architecture: ccvpe``; docs/method.md, "CCVPE"): pose from orientation-aware descriptors.

- Ground encoder: the backbone reads the panorama padded circularly on both sides (``ccvpe.ground_wrap`` of its
  width), the tap at ``ccvpe.ground_stride`` is cropped back to the panorama, and a trunk of 3×3 convolutions with
  circular padding along the width turns it into a descriptor of ``azimuth_bins`` columns per scale (the height is
  pooled, the width never is). The encoder is translation-equivariant along the azimuth: rolling the panorama by a
  whole bin rolls its descriptor by one column.
- Aerial decoder with Localization Matching Upsampling (LMU): from the backbone's coarsest satellite tap, upsample
  ×2 per stage, fusing the taps at each stride; at every stride of ``ccvpe.match_strides`` a head gives every cell
  an aerial descriptor, the ground descriptor is matched against it under every heading roll
  (:mod:`geodistill.models.azimuth_matching`), and the best-roll score and the heading concentration are fed back
  into the decoder, which ends in location logits at ``ccvpe.output_stride`` of the tile. An aerial descriptor
  head is a learnt 1×1 convolution (``ccvpe.aerial_descriptor: conv``, the paper) or the polar descriptor of
  :mod:`geodistill.models.polar_descriptor` (``polar``: rays towards each bin's azimuth, one network for every
  bin). With ``ccvpe.match_residual`` the location logits are the matching scores (upsampled, averaged over the
  scales, / T) plus the decoder's correction, which starts at zero.
- Orientation decoder: the heading vectors of the matching (mean (cos, sin) of the roll softmax), summed over the
  scales and upsampled, are turned by a learned rotation per cell (a complex factor computed from
  rotation-invariant features), so the heading field rotates exactly with the panorama.
- Heading prior: ``batch["heading_prior_deg"]`` ± ``batch["heading_range_deg"]`` restricts the rolls (location
  and heading) and clamps the read-out; without one the heading is searched over the full circle.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geodistill import keys
from geodistill.config import CcvpeConfig, ModelConfig
from geodistill.losses import heading_vector_loss, location_cross_entropy, roll_cross_entropy
from geodistill.models.azimuth_matching import (
    bin_visibility,
    heading_vectors,
    masked_shift_max,
    match_volume,
    prior_shift_mask,
    read_heading,
    rotate_vectors,
    value_at,
)
from geodistill.models.image_inputs import BackboneInputs, round_up
from geodistill.models.polar_descriptor import PolarAerialDescriptor
from geodistill.models.prediction import argmax_cells, predict_from_scores, xy_to_cells

MATCH_PREFIX = "ccvpe/match/"    # + scale index: (B,h,w) best-roll cosine per aerial cell
VOLUME_PREFIX = "ccvpe/volume/"  # + scale index: (B,K,h,w) cosine per roll and cell
MATCH_CELL_M = "ccvpe/cell_m/"   # + scale index: (B,) metres per aerial cell


class CircularConv(nn.Module):
    """3×3 convolution, circular padding along the width (azimuth), zero padding along the height."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (1, 1, 0, 0), mode="circular"))


class GroundDescriptor(nn.Module):
    """Ground tap (B,C,h,W') -> one (B,C_l,N) descriptor per matching scale, equivariant along the width."""

    def __init__(self, in_channels: int, config: CcvpeConfig) -> None:
        super().__init__()
        width = config.ground_width
        self.bins = config.azimuth_bins
        self.rows = config.ground_rows
        self.trunk = nn.Sequential(CircularConv(in_channels, width), nn.ReLU(inplace=True),
                                   CircularConv(width, width), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList(nn.Conv2d(width, channels, kernel_size=(self.rows, 1))
                                   for channels in config.descriptor_channels)

    def forward(self, tap: torch.Tensor) -> list[torch.Tensor]:
        x = F.adaptive_avg_pool2d(self.trunk(tap), (self.rows, self.bins))
        return [head(x)[:, :, 0] for head in self.heads]


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class LmuDecoder(nn.Module):
    """Aerial decoder with Localization Matching Upsampling, plus the orientation decoder's rotation head."""

    def __init__(self, tap_channels: list[int], tap_strides: list[int], config: CcvpeConfig) -> None:
        super().__init__()
        self.config = config
        self.bins = config.azimuth_bins
        coarsest = max(tap_strides)
        if config.output_stride > coarsest or coarsest % config.output_stride:
            raise ValueError(f"ccvpe.output_stride {config.output_stride} must divide the coarsest tap stride {coarsest}")
        outside = [s for s in config.match_strides if s > coarsest or s < config.output_stride]
        if outside:
            raise ValueError(f"ccvpe.match_strides {outside} lie outside the decoder's strides "
                             f"{config.output_stride}..{coarsest}")
        self.tap_index = {stride: i for i, stride in enumerate(tap_strides)}
        self.strides = [coarsest // 2**i for i in range(int(math.log2(coarsest // config.output_stride)) + 1)]
        self.scale_of = {stride: i for i, stride in enumerate(config.match_strides)}

        def width(stride: int) -> int:
            return max(config.decoder_width * stride // coarsest, 8)

        self.input_projection = nn.Conv2d(tap_channels[self.tap_index[coarsest]], width(coarsest), 1)
        blocks, descriptors, fusions = {}, {}, {}
        previous = width(coarsest)
        for stride in self.strides:
            lateral = tap_channels[self.tap_index[stride]] if stride in self.tap_index and stride != coarsest else 0
            blocks[str(stride)] = _conv_block(previous + lateral, width(stride))
            if stride in self.scale_of:
                channels = config.descriptor_channels[self.scale_of[stride]]
                descriptors[str(stride)] = (
                    PolarAerialDescriptor(width(stride), channels, self.bins, config.polar_radii_m)
                    if config.aerial_descriptor == "polar" else nn.Conv2d(width(stride), channels * self.bins, 1))
                fusions[str(stride)] = nn.Sequential(nn.Conv2d(width(stride) + 2, width(stride), 3, padding=1),
                                                     nn.ReLU(inplace=True))
            previous = width(stride)
        self.blocks = nn.ModuleDict(blocks)
        self.descriptors = nn.ModuleDict(descriptors)
        self.fusions = nn.ModuleDict(fusions)
        self.location_head = nn.Conv2d(previous, 1, 3, padding=1)
        if config.match_residual:  # the location starts as the matching alone; the decoder learns corrections
            nn.init.zeros_(self.location_head.weight)
            nn.init.zeros_(self.location_head.bias)
        self.rotation_head = nn.Sequential(nn.Conv2d(previous + 1, 16, 3, padding=1), nn.ReLU(inplace=True),
                                           nn.Conv2d(16, 2, 3, padding=1))
        nn.init.zeros_(self.rotation_head[-1].weight)
        with torch.no_grad():
            self.rotation_head[-1].bias.copy_(torch.tensor([1.0, 0.0]))  # starts as the identity rotation

    def aerial_descriptors(self, stride: int, x: torch.Tensor, map_m: torch.Tensor) -> torch.Tensor:
        """(B,C,N,h,w) aerial descriptors at ``stride`` from the decoder features ``x``; ``map_m`` (B,) metres
        covered by the feature map's side."""
        head = self.descriptors[str(stride)]
        batch, _, height, width = x.shape
        if isinstance(head, PolarAerialDescriptor):
            return head(x, map_m / width)
        return head(x).view(batch, -1, self.bins, height, width)

    def forward(self, taps: list[torch.Tensor], ground: list[torch.Tensor], visible: torch.Tensor,
                allowed: torch.Tensor | None, map_m: torch.Tensor) -> dict:
        config = self.config
        x = self.input_projection(taps[self.tap_index[self.strides[0]]])
        outputs: dict = {}
        vector_sum = None
        for stride in self.strides:
            if stride != self.strides[0]:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                if stride in self.tap_index:
                    lateral = taps[self.tap_index[stride]]
                    x = torch.cat([F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False),
                                   lateral], dim=1)
            x = self.blocks[str(stride)](x)
            if stride in self.scale_of:
                scale = self.scale_of[stride]
                aerial = self.aerial_descriptors(stride, x, map_m)
                volume = match_volume(ground[scale], aerial, visible, config.shifts_per_bin)
                best = masked_shift_max(volume, allowed)
                vectors = heading_vectors(volume, config.match_temperature, allowed)
                concentration = vectors.norm(dim=1, keepdim=True)
                x = self.fusions[str(stride)](torch.cat([x, best[:, None], concentration], dim=1))
                outputs[f"{VOLUME_PREFIX}{scale}"] = volume
                outputs[f"{MATCH_PREFIX}{scale}"] = best
                vector_sum = vectors if vector_sum is None else F.interpolate(
                    vector_sum, size=vectors.shape[-2:], mode="bilinear", align_corners=False) + vectors
        vector_sum = F.interpolate(vector_sum, size=x.shape[-2:], mode="bilinear", align_corners=False)
        vector_sum = vector_sum / len(config.match_strides)
        concentration = vector_sum.norm(dim=1, keepdim=True)
        rotation = self.rotation_head(torch.cat([x, concentration], dim=1))
        logits = self.location_head(x)[:, 0]
        if config.match_residual:
            matched = [F.interpolate(outputs[f"{MATCH_PREFIX}{scale}"][:, None], size=logits.shape[-2:],
                                     mode="bilinear", align_corners=False)[:, 0]
                       for scale in range(len(config.match_strides))]
            logits = logits + torch.stack(matched).mean(dim=0) / config.match_temperature
        outputs["logits"] = logits
        outputs["field"] = rotate_vectors(vector_sum, rotation)
        outputs["concentration"] = concentration[:, 0]
        return outputs


class CcvpeNet(BackboneInputs):
    """CCVPE localizer: a dense location distribution over the tile and a heading field (module docstring).

    Shares the interface the distillation pipeline uses with :class:`~geodistill.models.localizer.LocalizerNet`:
    ``satellite_taps``, ``ground_taps``, ``encode_satellite``, ``encode_ground``, ``localize``, ``levels`` (one
    level, 0: the location logits ``scores/0``) and ``trainable_parameters``.
    """

    required_data_keys = (keys.SAT, keys.PANO, keys.METERS_PER_PIXEL)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.ccvpe = config.ccvpe
        self.levels = [0]
        self.build_inputs(config)
        strides = list(self.backbone.strides)
        if self.ccvpe.ground_stride not in strides:
            raise ValueError(f"model.ccvpe.ground_stride={self.ccvpe.ground_stride} is not a tap stride of backbone "
                             f"{config.backbone!r} (its strides: {strides})")
        if self.backbone.is_vit or len(set(strides)) != len(strides):
            raise ValueError(f"the CCVPE base needs a CNN backbone with taps at distinct strides; {config.backbone!r} "
                             "is not one")
        self.ground_tap = strides.index(self.ccvpe.ground_stride)
        self.ground_encoder = GroundDescriptor(self.backbone.channels[self.ground_tap], self.ccvpe)
        self.aerial_decoder = LmuDecoder(list(self.backbone.channels), strides, self.ccvpe)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The ground encoder's and the decoder's parameters, plus the backbone's when it is not frozen."""
        modules = [self.ground_encoder, self.aerial_decoder] + ([] if self.freeze_backbone else [self.backbone])
        return [p for module in modules for p in module.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ encoders

    def wrap_columns(self, width: int) -> int:
        """Columns of circular padding on each side of a ``width``-pixel model input."""
        multiple = math.lcm(self.backbone.input_multiple, self.ccvpe.ground_stride)
        columns = round_up(int(math.ceil(self.ccvpe.ground_wrap * width)), multiple)
        return min(columns, width // multiple * multiple)

    def ground_taps(self, pano: torch.Tensor, fov_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[the ground tap (B,C,h,W/stride)] of the (masked) panorama, computed with circular padding."""
        pano = self._masked_pano(pano, fov_mask)
        images = self._normalize(pano)
        multiple = self.backbone.input_multiple
        target = (round_up(pano.shape[2], multiple), round_up(pano.shape[3], math.lcm(multiple, self.ccvpe.ground_stride)))
        if target != tuple(pano.shape[2:]):
            images = F.interpolate(images, size=target, mode="bilinear", align_corners=False)
        wrap = self.wrap_columns(images.shape[-1])
        if wrap:
            images = torch.cat([images[..., -wrap:], images, images[..., :wrap]], dim=-1)
        tap = self._features(images)[self.ground_tap]
        start = wrap // self.ccvpe.ground_stride
        return [tap[..., start: start + target[1] // self.ccvpe.ground_stride]]

    def encode_ground(self, pano: torch.Tensor, fov_mask: torch.Tensor | None = None,
                      taps: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """(B,3,Hp,Wp) in [0,1] -> one (B,C_l,N) descriptor per matching scale (hidden columns black first)."""
        return self.ground_encoder((self.ground_taps(pano, fov_mask) if taps is None else taps)[0])

    def encode_satellite(self, sat: torch.Tensor, taps: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """The satellite taps: the aerial decoder needs the ground descriptor (LMU), so it runs in :meth:`localize`."""
        return self.satellite_taps(sat) if taps is None else taps

    # ------------------------------------------------------------------ matching and read-out

    @staticmethod
    def heading_prior(batch: dict, size: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(prior (B,), range (B,)) degrees from the batch, or (None, None) for the full circle."""
        prior = batch.get(keys.HEADING_PRIOR)
        if prior is None:
            return None, None
        prior = torch.as_tensor(prior, dtype=torch.float32, device=device).reshape(-1).expand(size)
        spread = batch.get(keys.HEADING_RANGE)
        spread = torch.zeros(size, device=device) if spread is None else torch.as_tensor(
            spread, dtype=torch.float32, device=device).reshape(-1).expand(size)
        if bool((spread < 0).any()):
            raise ValueError("heading_range_deg must be at least 0 degrees")
        return prior, spread.clamp(max=180.0)

    def localize(self, f_sat_levels: list[torch.Tensor], f_pano_levels: list[torch.Tensor], batch: dict,
                 fov_mask: torch.Tensor | None = None, template_masks: dict | None = None) -> dict:
        """Match, decode and read out (see :meth:`forward`); ``fov_mask`` hides the azimuth bins it mostly hides."""
        if template_masks is not None:
            raise ValueError("template masks are a G2SWeakly ablation; the CCVPE base takes FoV masks only")
        batch_size = f_pano_levels[0].shape[0]
        device = f_pano_levels[0].device
        visible = bin_visibility(fov_mask, batch_size, self.ccvpe.azimuth_bins, device)
        prior, spread = self.heading_prior(batch, batch_size, device)
        num_shifts = self.ccvpe.azimuth_bins * self.ccvpe.shifts_per_bin
        allowed = None if prior is None else prior_shift_mask(num_shifts, prior, spread, device)
        tile_size = batch[keys.SAT].shape[-1]
        mpp = torch.as_tensor(batch[keys.METERS_PER_PIXEL], dtype=torch.float32, device=device).reshape(-1)
        mpp = mpp.expand(batch_size)
        _, _, covered_px = self.satellite_layout(tile_size)
        decoded = self.aerial_decoder(f_sat_levels, f_pano_levels, visible, allowed, mpp * covered_px)
        logits = decoded["logits"]
        cell_m = mpp * (covered_px / logits.shape[-1])
        outputs = {name: value for name, value in decoded.items() if name.startswith("ccvpe/")}
        for name, value in decoded.items():
            if name.startswith(MATCH_PREFIX):
                outputs[MATCH_CELL_M + name[len(MATCH_PREFIX):]] = mpp * (covered_px / value.shape[-1])
        outputs.update(predict_from_scores(logits, cell_m, mpp, tile_size, 1.0, self.config.subcell_refine))
        outputs[keys.level_key(keys.SCORES, 0)] = logits
        outputs[keys.CELL_M] = cell_m
        field = decoded["field"]
        rowcol = argmax_cells(logits.detach())
        heading, _ = read_heading(field, rowcol, prior, spread)
        outputs[keys.ORIENTATION_FIELD] = field
        outputs[keys.HEADING] = heading
        outputs[keys.HEADING_CONFIDENCE] = value_at(decoded["concentration"], rowcol)
        return outputs

    def forward(self, batch: dict, fov_mask: torch.Tensor | None = None) -> dict:
        """Localise each panorama on its own tile and estimate its heading.

        | input (batch)          | shape       | |
        |------------------------|-------------|-|
        | ``sat``, ``pano``, ``meters_per_pixel`` | | as for ``LocalizerNet`` |
        | ``heading_prior_deg``  | (B,)        | optional prior heading (absent: the full circle) |
        | ``heading_range_deg``  | (B,)        | optional half range of the prior (default 0: known heading) |
        | ``fov_mask`` (argument) | (B,Wp) bool | optional: hidden columns black, their azimuth bins unmatched |

        | output                          | shape       | |
        |---------------------------------|-------------|-|
        | ``scores``, ``scores/0``        | (B,H',W')   | location logits at ``ccvpe.output_stride`` |
        | ``log_probs``, ``prob``, ``uv_max``, ``xy_max``, ... | | as for ``LocalizerNet`` (temperature 1) |
        | ``heading``                     | (B,)        | degrees in [0, 360), read at the predicted location |
        | ``heading_confidence``          | (B,)        | mean resultant length of the roll distribution there, [0, 1] |
        | ``orientation_field``           | (B,2,H',W') | heading vector (cos, sin) per cell |
        | ``ccvpe/match/<i>``, ``ccvpe/volume/<i>`` | (B,h,w), (B,K,h,w) | matching at scale i (for the losses) |
        """
        missing = [key for key in self.required_data_keys if key not in batch]
        if missing:
            raise KeyError(f"CcvpeNet needs batch keys {missing}")
        f_sat = self.encode_satellite(batch[keys.SAT])
        f_pano = self.encode_ground(batch[keys.PANO], fov_mask)
        return self.localize(f_sat, f_pano, batch, fov_mask)

    # ------------------------------------------------------------------ supervised losses

    def loss(self, pred: dict, batch: dict) -> dict[str, torch.Tensor]:
        """CCVPE's losses with full pose labels (``xy_gt``, ``heading_gt``), per sample (B,) plus ``total``:

        - ``location``: cross-entropy of the location logits at the true cell;
        - ``infonce``: mean over scales of the InfoNCE over cells of the best-roll cosines / T and of the
          InfoNCE over rolls at the true cell (the descriptor contrastive terms);
        - ``orientation``: ‖v/‖v‖ − (cos h, sin h)‖² of the heading field at the true cell.
        """
        config = self.ccvpe
        xy = torch.as_tensor(batch[keys.XY_GT], dtype=torch.float32, device=pred[keys.SCORES].device)
        heading = torch.as_tensor(batch[keys.HEADING_GT], dtype=torch.float32, device=xy.device).reshape(-1)
        logits = pred[keys.SCORES]
        true_cell = xy_to_cells(xy, tuple(logits.shape[-2:]), pred[keys.CELL_M])
        location = location_cross_entropy(logits, true_cell)
        infonce_terms = []
        for scale in range(len(config.match_strides)):
            best = pred[f"{MATCH_PREFIX}{scale}"]
            volume = pred[f"{VOLUME_PREFIX}{scale}"]
            cell = xy_to_cells(xy, tuple(best.shape[-2:]), pred[f"{MATCH_CELL_M}{scale}"])
            at_truth = value_at(volume, cell)  # B,K
            infonce_terms.append(location_cross_entropy(best, cell, config.match_temperature)
                                 + roll_cross_entropy(at_truth, heading, config.match_temperature))
        infonce = torch.stack(infonce_terms).mean(dim=0)
        orientation = heading_vector_loss(value_at(pred[keys.ORIENTATION_FIELD], true_cell), heading)
        total = location + config.infonce_weight * infonce + config.orientation_weight * orientation
        return {"total": total.mean(), "location": location, "infonce": infonce, "orientation": orientation}
