"""The weakly supervised localizer (method.md §4): backbone, two decoders, BEV template, masked NCC."""

from __future__ import annotations

import logging
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from geodistill import keys
from geodistill.config import ModelConfig
from geodistill.models.bev_projection import bev_cell_m, project_fov_cone, project_template, template_cells
from geodistill.models.correlation import best_placement_distance, masked_ncc
from geodistill.models.decoders import build_decoder
from geodistill.models.image_inputs import BackboneInputs, round_up
from geodistill.models.prediction import FAITHFUL_CENTER_SHIFT, cells_to_xy, predict_from_scores

logger = logging.getLogger("geodistill.models.localizer")


class LocalizerNet(BackboneInputs):
    """G2SWeakly-style localizer: ground features projected to a BEV template, correlated with satellite features.

    One backbone (frozen by default) feeds two decoders with separate weights, one for the satellite tile and
    one for the panorama. Inputs are [0, 1] images; normalisation follows ``config.normalization``.

    Input sizes: the satellite tile (square, S px) is padded symmetrically to P, the next multiple of the
    backbone's ``input_multiple`` (or resized to P when the padding would be odd, so that the feature map stays
    centred on the tile); the panorama is resized to multiples of it (this keeps the full 360° on its width), or,
    with ``pano_input="pad"`` (the reference, faithful preset), zero-padded around the normalised image to them
    (320×640 -> 322×644 for patch 14); the BEV projection then spans the padded width as the reference's does.
    """

    required_data_keys = (keys.SAT, keys.PANO, keys.METERS_PER_PIXEL)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.levels = sorted(set(config.levels))
        self.build_inputs(config)

        def decoder() -> nn.Module:
            return build_decoder(config.decoder, self.backbone.channels, self.backbone.strides, self.backbone.is_vit,
                                 config.decoder_width, list(config.level_channels), self.levels)

        self.sat_decoder = decoder()
        self.pano_decoder = decoder()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The decoders' parameters, plus the backbone's when it is not frozen."""
        modules = [self.sat_decoder, self.pano_decoder] + ([] if self.freeze_backbone else [self.backbone])
        return [p for module in modules for p in module.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ encoders

    def encode_satellite(self, sat: torch.Tensor, taps: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """(B,3,S,S) in [0,1] -> list over ``config.levels`` of (B,C_l,A_l,A_l), each unit-norm.

        ``taps`` (from :meth:`satellite_taps`, possibly of another network sharing this backbone) skips the
        backbone pass.
        """
        return self.sat_decoder(self.satellite_taps(sat) if taps is None else taps)

    def encode_ground(self, pano: torch.Tensor, fov_mask: torch.Tensor | None = None,
                      taps: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """(B,3,Hp,Wp) in [0,1] -> list over ``config.levels`` of (B,C_l,h_l,w_l), each unit-norm.

        With ``fov_mask`` (B,Wp) bool the invisible columns are set to black before normalisation. ``taps``
        (from :meth:`ground_taps` with the same mask) skips the backbone pass.
        """
        return self.pano_decoder(self.ground_taps(pano, fov_mask) if taps is None else taps)

    def ground_taps(self, pano: torch.Tensor, fov_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Backbone taps of the (masked) normalised panorama (B,3,Hp,Wp) in [0,1]."""
        pano = self._masked_pano(pano, fov_mask)
        images = self._normalize(pano)
        multiple = self.backbone.input_multiple
        height, width = pano.shape[2:]
        target = (round_up(height, multiple), round_up(width, multiple))
        if target == (height, width):
            return self._features(images)
        if self.config.pano_input == "pad":  # the reference: zeros around the normalised image (320x640 -> 322x644)
            top, left = (target[0] - height) // 2, (target[1] - width) // 2
            images = F.pad(images, (left, target[1] - width - left, top, target[0] - height - top))
        else:
            images = F.interpolate(images, size=target, mode="bilinear", align_corners=False)
        return self._features(images)

    # ------------------------------------------------------------------ matching

    @staticmethod
    def _per_sample(batch: dict, key: str, default: float, size: int, device: torch.device) -> torch.Tensor:
        """(B,) float32 values of an optional batch key (one value may serve the whole batch)."""
        value = batch.get(key)
        if value is None:
            return torch.full((size,), float(default), device=device)
        return torch.as_tensor(value, dtype=torch.float32, device=device).reshape(-1).expand(size)

    def templates(self, f_sat_levels: list[torch.Tensor], f_pano_levels: list[torch.Tensor], batch: dict,
                  fov_mask: torch.Tensor | None = None, template_masks: dict[int, torch.Tensor] | None = None) -> dict:
        """Per level: BEV template, its correlation weight and the cell sizes.

        Args:
            f_sat_levels, f_pano_levels: outputs of :meth:`encode_satellite` / :meth:`encode_ground`.
            batch: needs ``sat`` (for S), ``meters_per_pixel``; ``camera_height_m`` and ``heading_gt`` optional (the
                heading of each panorama's centre line: a turned panorama still gives a north-up template).
            fov_mask: (B,Wp) bool visible panorama columns, or None (full view).
            template_masks: optional extra per-level (B,c,c) weights in [0, 1] (e.g. masked patches).

        Returns:
            Dict level -> dict(template (B,C,c,c), weight (B,c,c) or None, valid (B,c,c), bev_cell_m (B,),
            cell_m (B,) satellite feature cell, feature_side A).
        """
        config = self.config
        sat = batch[keys.SAT]
        batch_size, tile_size = sat.shape[0], sat.shape[-1]
        device = f_sat_levels[0].device
        mpp = torch.as_tensor(batch[keys.METERS_PER_PIXEL], dtype=torch.float32, device=device).reshape(-1)
        mpp = mpp.expand(batch_size)
        camera_height = self._per_sample(batch, keys.CAMERA_HEIGHT_M, config.camera_height_m, batch_size, device)
        heading = torch.nan_to_num(self._per_sample(batch, keys.HEADING_GT, 0.0, batch_size, device), nan=0.0)
        _, _, covered_px = self.satellite_layout(tile_size)
        result = {}
        for level, f_sat, f_pano in zip(self.levels, f_sat_levels, f_pano_levels):
            side = f_sat.shape[-1]
            cells = template_cells(side, config.template_crop)
            bev_cell = bev_cell_m(mpp, covered_px, side, level, config.bev_grid)
            template, valid = project_template(f_pano, cells, bev_cell, camera_height, config.wrap_seam,
                                               config.pixel_convention, heading)
            weight = None
            if fov_mask is not None:
                cone = project_fov_cone(fov_mask, cells, bev_cell, camera_height, config.pixel_convention, heading)
                weight = cone
            if template_masks is not None and level in template_masks:
                extra = template_masks[level].to(template.dtype)
                weight = extra if weight is None else weight * extra
            if weight is not None:
                if config.fov_template == "multiply":
                    template = template * weight.unsqueeze(1)
                else:
                    template = template * (weight > 0).unsqueeze(1).to(template.dtype)
            result[level] = {
                "template": template, "weight": weight, "valid": valid, "bev_cell_m": bev_cell,
                "cell_m": mpp * (covered_px / side), "feature_side": side,
            }
        return result

    def outside_search_region(self, score_hw, cell_m: torch.Tensor, batch: dict) -> torch.Tensor | None:
        """(B,H',W') True for the score cells whose centre lies outside the search region (``model.search_region``:
        a centred square of that fraction of the tile side, where the camera is searched), or None (whole tile).
        Those cells get the lowest cosine, -1: never the best placement of the weak loss, and no probability."""
        fraction = self.config.search_region
        if fraction >= 1.0:
            return None
        rows, cols = score_hw
        mpp = torch.as_tensor(batch[keys.METERS_PER_PIXEL], dtype=torch.float32, device=cell_m.device).reshape(-1)
        half_m = (fraction * batch[keys.SAT].shape[-1] / 2.0) * mpp.expand(cell_m.shape[0])
        grid = torch.stack(torch.meshgrid(torch.arange(rows, dtype=torch.float32, device=cell_m.device),
                                          torch.arange(cols, dtype=torch.float32, device=cell_m.device),
                                          indexing="ij"), dim=-1).reshape(-1, 2)
        outside = []
        for index in range(cell_m.shape[0]):
            xy = cells_to_xy(grid, score_hw, cell_m[index].expand(grid.shape[0]))
            outside.append((xy.abs() > half_m[index]).any(dim=-1).reshape(rows, cols))
        return torch.stack(outside)

    def localize(self, f_sat_levels: list[torch.Tensor], f_pano_levels: list[torch.Tensor], batch: dict,
                 fov_mask: torch.Tensor | None = None, template_masks: dict[int, torch.Tensor] | None = None) -> dict:
        """Paired correlation at every level and the position outputs of the finest level (see :meth:`forward`)."""
        config = self.config
        per_level = self.templates(f_sat_levels, f_pano_levels, batch, fov_mask, template_masks)
        outputs: dict[str, torch.Tensor] = {}
        for level, f_sat in zip(self.levels, f_sat_levels):
            entry = per_level[level]
            scores = masked_ncc(f_sat, entry["template"], entry["weight"], mode="paired", method=config.correlation)
            outside = self.outside_search_region(scores.shape[-2:], entry["cell_m"], batch)
            if outside is not None:
                scores = scores.masked_fill(outside, -1.0)
            outputs[keys.level_key(keys.SCORES, level)] = scores
        finest = self.levels[-1]
        entry = per_level[finest]
        scores = outputs[keys.level_key(keys.SCORES, finest)]
        sat = batch[keys.SAT]
        tile_size = sat.shape[-1]
        mpp = torch.as_tensor(batch[keys.METERS_PER_PIXEL], dtype=torch.float32, device=scores.device)
        mpp = mpp.reshape(-1).expand(scores.shape[0])
        if config.metric_conversion == "faithful":
            cell_m, shift = mpp * (tile_size / entry["feature_side"]), FAITHFUL_CENTER_SHIFT
        else:
            cell_m, shift = entry["cell_m"], 0.0
        outputs.update(predict_from_scores(scores, cell_m, mpp, tile_size, config.score_temperature,
                                           config.subcell_refine, shift))
        outputs[keys.CELL_M] = cell_m
        outputs[keys.F_SAT] = f_sat_levels[-1]
        outputs[keys.F_BEV] = entry["template"]
        outputs[keys.VALID_BEV] = entry["valid"]
        return outputs

    def forward(self, batch: dict, fov_mask: torch.Tensor | None = None) -> dict:
        """Localise each panorama on its own satellite tile.

        | input (batch)          | shape       | |
        |------------------------|-------------|-|
        | ``sat``                | (B,3,S,S)   | [0, 1] |
        | ``pano``               | (B,3,Hp,Wp) | [0, 1] |
        | ``meters_per_pixel``   | (B,)        | of ``sat`` as fed |
        | ``camera_height_m``    | (B,)        | optional (default ``config.camera_height_m``) |
        | ``heading_gt``         | (B,)        | optional heading of the centre line, deg clockwise from north (default 0) |
        | ``fov_mask`` (argument) | (B,Wp) bool | optional; the batch's own ``fov_mask`` is not read |

        | output                          | shape       | |
        |---------------------------------|-------------|-|
        | ``scores/<l>`` per level        | (B,H_l,W_l) | cosine similarity in [-1, 1] |
        | ``scores``, ``log_probs``, ``prob`` | (B,H',W') | finest level; softmax of scores / score_temperature |
        | ``uv_max``, ``uv_expectation``  | (B,2)       | pixels on ``sat`` as fed |
        | ``xy_max``, ``xy_expectation``  | (B,2)       | metres east/north of the tile centre |
        | ``confidence``, ``entropy``     | (B,)        | peak probability, entropy (nats) |
        | ``cell_m``                      | (B,)        | metres per score cell |
        | ``f_sat``, ``f_bev``, ``valid_bev`` | (B,C,A,A), (B,C,c,c), (B,c,c) | finest level |
        """
        missing = [key for key in self.required_data_keys if key not in batch]
        if missing:
            raise KeyError(f"LocalizerNet needs batch keys {missing}")
        f_sat_levels = self.encode_satellite(batch[keys.SAT])
        f_pano_levels = self.encode_ground(batch[keys.PANO], fov_mask)
        return self.localize(f_sat_levels, f_pano_levels, batch, fov_mask)

    def all_pairs_from_features(self, f_sat_levels: list[torch.Tensor], f_pano_levels: list[torch.Tensor],
                                batch: dict, fov_mask: torch.Tensor | None = None,
                                gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[int, torch.Tensor]:
        """Level -> (B,B) best-placement distance D[m, n] (satellite m, panorama n) for the weak loss.

        ``gather`` (for example an all-gather over DDP ranks) is applied to the satellite features, templates and
        weights before the correlation, so D spans every gathered sample: (W·B, W·B).
        """
        per_level = self.templates(f_sat_levels, f_pano_levels, batch, fov_mask)
        distances = {}
        for level, f_sat in zip(self.levels, f_sat_levels):
            entry = per_level[level]
            template, weight = entry["template"], entry["weight"]
            if gather is not None:
                f_sat, template = gather(f_sat), gather(template)
                weight = None if weight is None else gather(weight)
            cosine = masked_ncc(f_sat, template, weight, mode="all_pairs", method=self.config.correlation)
            outside = self.outside_search_region(cosine.shape[-2:], entry["cell_m"], batch)
            if outside is not None:
                cosine = cosine.masked_fill(outside[:, None] if gather is None else outside[:1, None], -1.0)
            distances[level] = best_placement_distance(cosine)
        return distances

    def all_pairs_distance(self, batch: dict, fov_mask: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
        """Encode the batch and return level -> (B,B) D matrix, D[m, n] = min over placements of 2 − 2·cos."""
        f_sat_levels = self.encode_satellite(batch[keys.SAT])
        f_pano_levels = self.encode_ground(batch[keys.PANO], fov_mask)
        return self.all_pairs_from_features(f_sat_levels, f_pano_levels, batch, fov_mask)
