"""Reduced frames and what is measured on each.

Catalog sources in the field, aperture photometry, and the bright field stars
of single-beam polarimetric frames; a reduced frame records the masters it was
calibrated with.
"""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, utcnow
from iopreport.store.models.masters import MasterBias, MasterDark, MasterFlat
from iopreport.store.models.raw import RawFit
from iopreport.store.models.sources import AstroSource


class ReducedFit(BaseModel):
    """The calibrated, plate-solved product of one LIGHT raw frame."""

    rawfit = pw.ForeignKeyField(RawFit, unique=True, backref="reduced", on_delete="CASCADE")
    filename = pw.CharField()  # relative to the data directory
    masterbias = pw.ForeignKeyField(MasterBias, null=True, on_delete="SET NULL")
    masterdark = pw.ForeignKeyField(MasterDark, null=True, on_delete="SET NULL")
    masterflat = pw.ForeignKeyField(MasterFlat, null=True, on_delete="SET NULL")
    flags = pw.IntegerField(default=0)  # bits.ReducedFitFlags
    error = pw.TextField(default="")
    #: how the WCS was found: solved, quads, central-pair, header, header+shift (schema 6)
    astrometry_method = pw.TextField(default="")
    astrometry_detail = pw.TextField(default="")  # which attempt, and what it matched
    center_ra_deg = pw.FloatField(null=True)
    center_dec_deg = pw.FloatField(null=True)
    pixscale_arcsec = pw.FloatField(null=True)
    seeing_fwhm_arcsec = pw.FloatField(null=True)
    n_detected = pw.IntegerField(null=True)
    n_cosmic_pixels = pw.IntegerField(null=True)
    inputs_key = pw.CharField(default="")  # hash of what it was made from (skip if unchanged)
    modified = pw.DateTimeField(default=utcnow)


class SourceInField(BaseModel):
    """A catalog source that falls on a reduced frame, and where."""

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="sources_in_field", on_delete="CASCADE")
    astrosource = pw.ForeignKeyField(AstroSource, on_delete="CASCADE")
    x_px = pw.FloatField()
    y_px = pw.FloatField()

    class Meta:
        indexes = ((("reducedfit", "astrosource"), True), (("astrosource",), False))


class AperPhotResult(BaseModel):
    """Aperture photometry of one source (one beam) on one reduced frame."""

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="aperphot", on_delete="CASCADE")
    astrosource = pw.ForeignKeyField(AstroSource, on_delete="CASCADE")
    pair = pw.CharField(default="")  # "" single beam, "O" ordinary, "E" extraordinary
    aperture_px = pw.FloatField()
    annulus_in_px = pw.FloatField()
    annulus_out_px = pw.FloatField()
    x_px = pw.FloatField()
    y_px = pw.FloatField()
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    bkg_counts = pw.FloatField(null=True)  # background inside the aperture
    bkg_counts_err = pw.FloatField(null=True)
    fwhm_px = pw.FloatField(null=True)
    flags = pw.IntegerField(default=0)  # bits.PhotometryFlags
    modified = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("reducedfit", "astrosource", "pair", "aperture_px"), True),
            (("astrosource",), False),
        )


class FieldStarFlux(BaseModel):
    """A bright field star (not in the catalog) measured on a single-beam polarimetric frame.

    The comparison stars of a polarizer-wheel sequence whose target has no
    catalog calibrators: matched across the sequence's frames by position, they
    measure the transparency of each frame (docs/polarimetry.md).
    """

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="field_stars", on_delete="CASCADE")
    ra_deg = pw.FloatField()
    dec_deg = pw.FloatField()
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    flags = pw.IntegerField(default=0)  # bits.PhotometryFlags

    class Meta:
        indexes = ((("reducedfit",), False),)
