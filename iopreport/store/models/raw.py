"""Nights at a telescope (epochs) and the raw FITS files of each, as their headers describe them."""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, utcnow
from iopreport.store.models.sources import AstroSource


class Epoch(BaseModel):
    """A night at a telescope; ``night`` is the evening date (IOP4 convention)."""

    telescope = pw.CharField()
    night = pw.DateField()
    flags = pw.IntegerField(default=0)  # bits.EpochFlags
    error = pw.TextField(default="")
    first_seen = pw.DateTimeField(default=utcnow)
    last_listed = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("telescope", "night"), True), (("night",), False))

    @property
    def epochname(self) -> str:
        """``<TEL>/<YYYY-MM-DD>``, as IOP4 names epochs."""
        return f"{self.telescope}/{self.night.isoformat()}"

    def __str__(self) -> str:
        return self.epochname


class RawFit(BaseModel):
    """A raw FITS file of an epoch, and what its header says."""

    epoch = pw.ForeignKeyField(Epoch, backref="rawfits", on_delete="CASCADE")
    filename = pw.CharField()
    size_bytes = pw.IntegerField(null=True)
    sha256 = pw.CharField(null=True)
    # size, times and inode when sha256 was taken (iopreport.fileio.file_stamp; schema 8)
    file_stamp = pw.CharField(null=True)
    flags = pw.IntegerField(default=0)  # bits.RawFitFlags
    error = pw.TextField(default="")
    instrument = pw.CharField(null=True)
    imgtype = pw.CharField(null=True)  # bias | dark | flat | light
    obsmode = pw.CharField(null=True)  # photometry | polarimetry
    band = pw.CharField(null=True)
    angle = pw.FloatField(null=True)  # polarizer or half-wave-plate angle, degrees
    juliandate = pw.FloatField(null=True)
    exptime = pw.FloatField(null=True)  # seconds
    binning = pw.CharField(null=True)  # "XxY"
    imgsize = pw.CharField(null=True)  # "WxH" in pixels
    object_name = pw.CharField(null=True)  # OBJECT keyword as written
    target = pw.ForeignKeyField(AstroSource, null=True, backref="rawfits", on_delete="SET NULL")

    class Meta:
        indexes = (
            (("epoch", "filename"), True),
            (("epoch", "imgtype"), False),
            (("juliandate",), False),
        )

    @property
    def fileloc(self) -> str:
        """``<TEL>/<YYYY-MM-DD>/<filename>``: the file's identity across databases."""
        return f"{self.epoch.epochname}/{self.filename}"

    def __str__(self) -> str:
        return self.fileloc
