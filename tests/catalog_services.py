"""Pan-STARRS1 (MAST Catalogs API) and Gaia (TAP) served on 127.0.0.1 from the simulated sky.

The responses have the services' real shapes: MAST's ``panstarrs/dr2/mean.json``
(``{"info": [{name, type, db_type, description}], "data": [[...], ...]}``, objID
as a string, -999 for missing values) and its ``metadata.json`` column list; the
Gaia archive's synchronous TAP answer, a gzipped BINARY2 VOTable with Gaia DR3's
column names, types and units. PS1 g, r, i come from the sky's V, R, I by
inverting Tonry et al. (2012) Table 6, so that the catalog's own transformation
gives back the simulated magnitudes.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from iopreport.photsystems import TONRY2012_PS1_TO_JC
from iopreport.suggest.rules import separation_arcsec

PS1_INFO = [
    ("objName", "char", "STRING", "IAU name for this object."),
    ("objID", "long", "NUMBER", "Unique object identifier."),
    ("raMean", "double", "NUMBER", "Right ascension from single epoch detections."),
    ("decMean", "double", "NUMBER", "Declination from single epoch detections."),
    ("nDetections", "short", "NUMBER", "Number of single epoch detections in all filters."),
    ("gMeanApMag", "float", "NUMBER", "Mean aperture magnitude from g filter detections."),
    ("gMeanApMagErr", "float", "NUMBER", "Error in mean aperture magnitude."),
    ("gMeanApMagStd", "float", "NUMBER", "Standard deviation of aperture magnitudes."),
    ("rMeanApMag", "float", "NUMBER", "Mean aperture magnitude from r filter detections."),
    ("rMeanApMagErr", "float", "NUMBER", "Error in mean aperture magnitude."),
    ("rMeanApMagStd", "float", "NUMBER", "Standard deviation of aperture magnitudes."),
    ("iMeanApMag", "float", "NUMBER", "Mean aperture magnitude from i filter detections."),
    ("iMeanApMagErr", "float", "NUMBER", "Error in mean aperture magnitude."),
    ("iMeanApMagStd", "float", "NUMBER", "Standard deviation of aperture magnitudes."),
    ("iMeanPSFMag", "float", "NUMBER", "Mean PSF magnitude from i filter detections."),
    ("iMeanKronMag", "float", "NUMBER", "Mean Kron magnitude from i filter detections."),
    ("rMeanPSFMag", "float", "NUMBER", "Mean PSF magnitude from r filter detections."),
]
GAIA_FIELDS = [
    ("source_id", "long", None, "meta.id;meta.main"),
    ("ra", "double", "deg", "pos.eq.ra;meta.main"),
    ("dec", "double", "deg", "pos.eq.dec;meta.main"),
    ("phot_g_mean_mag", "float", "mag", "phot.mag;em.opt"),
    ("phot_variable_flag", "char", None, "meta.code;src.var"),
    ("ruwe", "float", None, "stat.value"),
]


def _poly(relation, x: float) -> float:
    return sum(c * x**k for k, c in enumerate(relation.coefficients))


def ps1_from_johnson(v: float, r: float, i: float) -> tuple[float, float, float]:
    """PS1 g, r, i whose Tonry et al. (2012) transformation gives V, R, I back."""
    fv, fr, fi = (TONRY2012_PS1_TO_JC[b] for b in "VRI")
    # V - R = fV(x) - fR(x), a quadratic in x = g - r
    c = [a - b for a, b in zip(fv.coefficients, fr.coefficients, strict=True)]
    c[0] -= v - r
    roots = np.roots([c[2], c[1], c[0]]) if c[2] else np.array([-c[0] / c[1]])
    real = [x.real for x in roots if abs(x.imag) < 1e-12]
    x = min(real, key=lambda value: abs(value - 0.6))
    r_ps1 = r - _poly(fr, x)
    return r_ps1 + x, r_ps1, i - _poly(fi, x)


@dataclass
class Ps1Row:
    """One served PS1 object (the MAST mean-table columns) and its Gaia counterpart."""

    values: dict
    gaia: dict | None = None

    def to_list(self, columns: list[str]) -> list:
        return [self.values.get(name, -999) for name in columns]


@dataclass
class SkyServices:
    """The rows both services answer from; ``requests`` logs what was asked."""

    rows: list[Ps1Row] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add_star(
        self,
        name: str,
        ra: float,
        dec: float,
        v: float,
        r: float,
        i: float,
        *,
        gaia: bool = True,
        **overrides,
    ) -> Ps1Row:
        g_ps1, r_ps1, i_ps1 = ps1_from_johnson(v, r, i)
        err = lambda m: round(0.002 + 0.003 * 10 ** (0.4 * (m - 17)), 5)  # noqa: E731
        values = {
            "objName": name,
            "objID": str(100000000000000000 + len(self.rows)),
            "raMean": ra,
            "decMean": dec,
            "nDetections": 42,
            "gMeanApMag": round(g_ps1, 5),
            "gMeanApMagErr": err(g_ps1),
            "gMeanApMagStd": 0.004,
            "rMeanApMag": round(r_ps1, 5),
            "rMeanApMagErr": err(r_ps1),
            "rMeanApMagStd": 0.004,
            "iMeanApMag": round(i_ps1, 5),
            "iMeanApMagErr": err(i_ps1),
            "iMeanApMagStd": 0.004,
            "iMeanPSFMag": round(i_ps1, 5),
            "iMeanKronMag": round(i_ps1 - 0.01, 5),
            "rMeanPSFMag": round(r_ps1, 5),
        }
        values.update(overrides)
        counterpart = None
        if gaia:
            counterpart = {
                "source_id": 2000000000000000000 + len(self.rows),
                "ra": ra,
                "dec": dec,
                "phot_g_mean_mag": round(v - 0.2, 4),
                "phot_variable_flag": "NOT_AVAILABLE",
                "ruwe": 1.02,
            }
        row = Ps1Row(values, counterpart)
        self.rows.append(row)
        return row

    def cone(self, ra: float, dec: float, radius_deg: float) -> list[Ps1Row]:
        return [
            row
            for row in self.rows
            if separation_arcsec(ra, dec, row.values["raMean"], row.values["decMean"])
            <= radius_deg * 3600
        ]

    # -- MAST -------------------------------------------------------------------
    def panstarrs(self, body: dict) -> dict:
        columns = body.get("columns") or [name for name, *_ in PS1_INFO]
        if isinstance(columns, str):
            columns = [columns]
        rows = self.cone(float(body["ra"]), float(body["dec"]), float(body["radius"]))
        for key, value in body.items():
            column, _, operator = key.partition(".")
            if column in ("ra", "dec", "radius", "columns", "pagesize", "page", "sort_by"):
                continue
            compare = {"gte": np.greater_equal, "lte": np.less_equal, "": np.equal}[operator]
            rows = [row for row in rows if compare(row.values[column], float(value))]
        info = [
            {"name": n, "type": t, "db_type": d, "description": text}
            for n, t, d, text in PS1_INFO
            if n in columns
        ]
        return {"info": info, "data": [row.to_list(columns) for row in rows]}

    @staticmethod
    def panstarrs_metadata() -> list[dict]:
        return [
            {"name": n, "column_name": n, "db_type": d, "type": t, "description": text}
            for n, t, d, text in PS1_INFO
        ]

    # -- Gaia TAP ---------------------------------------------------------------
    def gaia_votable(self, query: str) -> bytes:
        from astropy.io.votable.tree import Field, Resource, TableElement, VOTableFile

        circle = re.search(
            r"CIRCLE\('ICRS',\s*([-\d.eE+]+),\s*([-\d.eE+]+),\s*([-\d.eE+]+)\)", query
        )
        if not circle or "gaiadr3.gaia_source" not in query:
            raise ValueError(f"unsupported ADQL: {query}")
        ra, dec, radius = map(float, circle.groups())
        sources = [row.gaia for row in self.cone(ra, dec, radius) if row.gaia]
        votable = VOTableFile(version="1.4")
        resource = Resource(type="results")
        votable.resources.append(resource)
        table = TableElement(votable, name="result_S1")
        resource.tables.append(table)
        for name, datatype, unit, ucd in GAIA_FIELDS:
            extra = {"arraysize": "*"} if datatype == "char" else {}
            table.fields.append(
                Field(votable, name=name, datatype=datatype, unit=unit, ucd=ucd, **extra)
            )
        table.create_arrays(len(sources))
        for k, source in enumerate(sources):
            table.array[k] = tuple(source[name] for name, *_ in GAIA_FIELDS)
        buffer = io.BytesIO()
        votable.to_xml(buffer, tabledata_format="binary2")
        return gzip.compress(buffer.getvalue())


def _handler(services: SkyServices):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            services.requests.append(("GET", self.path))
            if self.path.startswith("/api/v0.1/panstarrs/dr2/mean/metadata.json"):
                body = json.dumps(services.panstarrs_metadata()).encode()
                return self._send(200, body, "application/json")
            return self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            services.requests.append(("POST", self.path))
            if self.path.startswith("/api/v0.1/panstarrs/dr2/mean.json"):
                answer = services.panstarrs(json.loads(raw))
                return self._send(200, json.dumps(answer).encode(), "application/json")
            if self.path.rstrip("/").endswith("/tap-server/tap/sync"):
                form = urllib.parse.parse_qs(raw.decode())
                try:
                    body = services.gaia_votable(form["QUERY"][0])
                except (KeyError, ValueError) as exc:
                    return self._send(400, str(exc).encode(), "text/plain")
                return self._send(200, body, "application/x-votable+xml")
            return self._send(404, b"not found", "text/plain")

    return Handler


class ServiceServer:
    """The two services on one HTTP server on 127.0.0.1 (a free port), in a thread."""

    def __init__(self, services: SkyServices) -> None:
        self.services = services
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(services))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ServiceServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def services_from_sky(ra: float, dec: float, radius_arcmin: float) -> SkyServices:
    """Every simulated sky star within ``radius_arcmin`` of (ra, dec)."""
    from iopreport.simulate.sky import load_sky, stars_near

    services = SkyServices()
    for k, star in enumerate(stars_near(load_sky(), ra, dec, radius_arcmin)):
        if not all(math.isfinite(float(star[b])) for b in "VRI"):
            continue
        services.add_star(
            f"PSO J{k:04d}",
            float(star["ra"]),
            float(star["dec"]),
            float(star["V"]),
            float(star["R"]),
            float(star["I"]),
        )
    return services
