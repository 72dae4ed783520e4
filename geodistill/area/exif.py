"""A panorama's GPS position and heading in its JPEG metadata: EXIF GPS tags and GPano XMP.

Latitudes and longitudes are decimal degrees, negative south and west (EXIF stores unsigned degrees, minutes and
seconds with an N/S or E/W reference). The heading is degrees clockwise from true north of the panorama centre
line: GPano's ``PoseHeadingDegrees`` first (what 360° cameras write), else EXIF ``GPSImgDirection``.
"""

from __future__ import annotations

import math
import os
import re
import struct
import tempfile
from fractions import Fraction
from pathlib import Path

from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from geodistill.errors import DataError

GPS_IFD = 0x8825
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4
GPS_IMG_DIRECTION_REF, GPS_IMG_DIRECTION = 16, 17
SECONDS_DENOMINATOR = 1_000_000  # 1e-6 arc seconds: about 0.03 mm
HEADING_PATTERN = re.compile(
    rb"GPano:PoseHeadingDegrees\s*(?:=\s*[\"']\s*([-+0-9.eE]+)\s*[\"']|>\s*([-+0-9.eE]+)\s*<)")
XMP_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
    'GPano:ProjectionType="equirectangular" GPano:UsePanoramaViewer="True" '
    'GPano:FullPanoWidthPixels="{width}" GPano:FullPanoHeightPixels="{height}" '
    'GPano:CroppedAreaImageWidthPixels="{width}" GPano:CroppedAreaImageHeightPixels="{height}" '
    'GPano:CroppedAreaLeftPixels="0" GPano:CroppedAreaTopPixels="0"{heading}/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def _rational(value: float, denominator: int = 1) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(Fraction(round(value * denominator), denominator))


def to_dms(value_deg: float) -> tuple:
    """Unsigned decimal degrees -> EXIF (degrees, minutes, seconds) rationals."""
    value = abs(float(value_deg))
    degrees = int(value)
    minutes = int((value - degrees) * 60.0)
    seconds = (value - degrees - minutes / 60.0) * 3600.0
    return _rational(degrees), _rational(minutes), _rational(seconds, SECONDS_DENOMINATOR)


def from_dms(dms, reference: str) -> float:
    """EXIF (degrees, minutes, seconds) and its N/S/E/W reference -> signed decimal degrees."""
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60.0 + seconds / 3600.0
    return -value if str(reference).strip().upper() in ("S", "W") else value


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError as error:
        raise DataError(f"{path}: no such file") from error
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from error


def _gps_ifd(image: Image.Image) -> dict:
    try:
        return dict(image.getexif().get_ifd(GPS_IFD))
    except (SyntaxError, ValueError, OSError, struct.error):
        return {}


def read_gps(path: str | os.PathLike) -> tuple[float, float] | None:
    """(lat, lon) in decimal degrees from the EXIF GPS tags, or None when the image has none (or they are invalid).

    Raises:
        DataError: the file is missing or not an image.
    """
    with _open(path) as image:
        gps = _gps_ifd(image)
    try:
        lat = from_dms(gps[GPS_LATITUDE], gps.get(GPS_LATITUDE_REF, "N"))
        lon = from_dms(gps[GPS_LONGITUDE], gps.get(GPS_LONGITUDE_REF, "E"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90.0 and abs(lon) <= 180.0):
        return None
    return lat, lon


def _xmp_heading(xmp) -> float | None:
    if not xmp:
        return None
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    match = HEADING_PATTERN.search(data)
    if match is None:
        return None
    try:
        value = float(match.group(1) or match.group(2))
    except ValueError:
        return None
    return value % 360.0 if math.isfinite(value) else None


def read_heading(path: str | os.PathLike) -> float | None:
    """The heading in degrees clockwise from north, [0, 360): GPano ``PoseHeadingDegrees`` first, then EXIF
    ``GPSImgDirection``; None when neither is present."""
    with _open(path) as image:
        heading = _xmp_heading(image.info.get("xmp"))
        gps = _gps_ifd(image) if heading is None else {}
    if heading is not None:
        return heading
    try:
        value = float(gps[GPS_IMG_DIRECTION])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return value % 360.0 if math.isfinite(value) else None


def gps_exif(lat: float, lon: float, heading_deg: float | None = None) -> Image.Exif:
    """An EXIF block holding the GPS position (and the heading as ``GPSImgDirection``, true north)."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"latitude {lat} / longitude {lon} out of range")
    exif = Image.Exif()
    gps = exif.get_ifd(GPS_IFD)
    gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID 2.3
    gps[GPS_LATITUDE_REF] = "S" if lat < 0 else "N"
    gps[GPS_LATITUDE] = to_dms(lat)
    gps[GPS_LONGITUDE_REF] = "W" if lon < 0 else "E"
    gps[GPS_LONGITUDE] = to_dms(lon)
    if heading_deg is not None:
        gps[GPS_IMG_DIRECTION_REF] = "T"
        gps[GPS_IMG_DIRECTION] = _rational(float(heading_deg) % 360.0, 10_000)
    return exif


def gpano_xmp(width: int, height: int, heading_deg: float | None = None) -> bytes:
    """A GPano XMP packet for an equirectangular panorama (with ``PoseHeadingDegrees`` when a heading is given)."""
    heading = "" if heading_deg is None else f' GPano:PoseHeadingDegrees="{float(heading_deg) % 360.0:.4f}"'
    return XMP_TEMPLATE.format(width=width, height=height, heading=heading).encode("utf-8")


def save_jpeg_with_gps(image: Image.Image, path: str | os.PathLike, lat: float, lon: float,
                       heading_deg: float | None = None, quality: int = 90) -> Path:
    """Write ``image`` as a JPEG with EXIF GPS (and heading) and GPano XMP, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = image.convert("RGB")
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        rgb.save(temp_name, format="JPEG", quality=quality, exif=gps_exif(lat, lon, heading_deg),
                 xmp=gpano_xmp(rgb.width, rgb.height, heading_deg))
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path
