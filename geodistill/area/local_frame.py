"""The local frame of a point: azimuthal equidistant metres east/north, true north up, centred on the point.

A north-up tile is cut in this frame, so its rows run along true north whatever the orthophoto's CRS (in UTM away
from the central meridian grid north is turned against true north). Within a few hundred metres of the centre the
frame is metric to well under a millimetre per metre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyproj import CRS, Transformer

WGS84 = "EPSG:4326"


def local_crs(lat: float, lon: float) -> CRS:
    """Azimuthal equidistant CRS on the WGS84 ellipsoid centred at (lat, lon), in metres."""
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.10f} +lon_0={lon:.10f} +x_0=0 +y_0=0 +ellps=WGS84 "
                          "+units=m +no_defs")


@dataclass
class LocalFrame:
    """Metres east/north of (lat, lon) <-> latitude/longitude."""

    lat: float
    lon: float
    crs: CRS = field(init=False)
    _to_local: Transformer = field(init=False, repr=False)
    _to_latlon: Transformer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.crs = local_crs(self.lat, self.lon)
        self._to_local = Transformer.from_crs(WGS84, self.crs, always_xy=True)
        self._to_latlon = Transformer.from_crs(self.crs, WGS84, always_xy=True)

    def to_latlon(self, east_m, north_m) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) in degrees of points east_m/north_m metres from the centre (scalars or arrays)."""
        lon, lat = self._to_latlon.transform(np.asarray(east_m, np.float64), np.asarray(north_m, np.float64))
        return np.asarray(lat), np.asarray(lon)

    def from_latlon(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """(east_m, north_m) of points given in degrees."""
        east, north = self._to_local.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
        return np.asarray(east), np.asarray(north)
