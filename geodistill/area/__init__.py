"""Your own area: an orthophoto plus geotagged panoramas in, refined positions out.

- :mod:`~geodistill.area.exif`: a panorama's GPS and heading in EXIF / GPano XMP (read and write);
- :mod:`~geodistill.area.orthophoto`: a GeoTIFF in any CRS or a folder of XYZ tiles, cut into north-up tiles;
- :mod:`~geodistill.area.priors`: each panorama's prior position (CSV or EXIF) and heading;
- :mod:`~geodistill.area.refine`: the ``refine`` run (batched, resumable) and its output files.
"""
