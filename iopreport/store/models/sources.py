"""The catalog's tables: sources, a target's calibrators, standards' literature polarization.

Written from catalog.toml (:func:`iopreport.catalog.sync_catalog`).
"""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, JSONField, utcnow


class AstroSource(BaseModel):
    """A source of catalog.toml: target, calibrator, star or standard.

    Rows are written from catalog.toml on every run (:func:`iopreport.catalog.sync_catalog`);
    a source removed from the file keeps its row (results point at it) with
    ``in_catalog = False``.
    """

    name = pw.CharField(unique=True)
    other_names = JSONField(default=list)
    srctype = pw.CharField()  # blazar | star | calibrator | polarization_standard
    ra_deg = pw.FloatField()  # ICRS
    dec_deg = pw.FloatField()  # ICRS
    redshift = pw.FloatField(null=True)
    comment = pw.TextField(default="")
    references = JSONField(default=list)
    mag_U = pw.FloatField(null=True)
    mag_U_err = pw.FloatField(null=True)
    mag_B = pw.FloatField(null=True)
    mag_B_err = pw.FloatField(null=True)
    mag_V = pw.FloatField(null=True)
    mag_V_err = pw.FloatField(null=True)
    mag_R = pw.FloatField(null=True)
    mag_R_err = pw.FloatField(null=True)
    mag_I = pw.FloatField(null=True)
    mag_I_err = pw.FloatField(null=True)
    in_catalog = pw.BooleanField(default=True)
    catalog_line = pw.IntegerField(null=True)
    modified = pw.DateTimeField(default=utcnow)

    def __str__(self) -> str:
        return self.name

    def literature_mag(self, band: str) -> tuple[float | None, float | None]:
        """Literature magnitude and error in ``band`` (None where unknown)."""
        return getattr(self, f"mag_{band}"), getattr(self, f"mag_{band}_err")

    @property
    def calibrator_sources(self) -> list[AstroSource]:
        """The calibrators catalog.toml lists for this source, by name."""
        query = (
            AstroSource.select()
            .join(Calibrator, on=(Calibrator.calibrator == AstroSource.id))
            .where(Calibrator.target == self)
            .order_by(AstroSource.name)
        )
        return list(query)


class Calibrator(BaseModel):
    """``calibrator`` is a comparison star of ``target`` (catalog.toml ``calibrators``)."""

    target = pw.ForeignKeyField(AstroSource, backref="calibrator_links", on_delete="CASCADE")
    calibrator = pw.ForeignKeyField(AstroSource, backref="target_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("target", "calibrator"), True),)


class StandardPolarization(BaseModel):
    """Literature polarization of a standard in one band; p as a fraction, chi in degrees."""

    source = pw.ForeignKeyField(AstroSource, backref="standard_polarization", on_delete="CASCADE")
    band = pw.CharField()
    p = pw.FloatField()
    p_err = pw.FloatField(null=True)
    chi = pw.FloatField(null=True)
    chi_err = pw.FloatField(null=True)

    class Meta:
        indexes = ((("source", "band"), True),)
