"""An HTTP mirror of index files on 127.0.0.1, and index files built from the simulated sky.

The server speaks real HTTP (``http.server`` in a thread): it answers Range
requests with 206, counts the requests per path, and can drop a connection
after a given number of bytes of a file (once), as a failing network does.
Index files are built with Debian's ``build-astrometry-index`` from the
simulator's sky catalog, one per (scale, HEALPix tile), named and laid out as
the 5200 series names them: ``<root>/5200/index-52SS-TT.fits``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import astrometry
import numpy as np
from astropy.table import Table

from iopreport.indexfiles.series import SERIES

BUILDER = "build-astrometry-index"


def builder() -> str:
    path = shutil.which(BUILDER)
    assert path, f"{BUILDER} not found: apt-get install astrometry.net (make test does it)"
    return path


def sky_table(path: Path, faint_limit: float = 19.0) -> Path:
    """The simulated sky's stars as the builder's input table (RA, DEC, MAG)."""
    from iopreport.simulate.sky import SKY_FILE, load_sky

    sky = load_sky(SKY_FILE)
    rows = sky[sky["R"] < faint_limit]
    Table(
        {
            "RA": np.asarray(rows["ra"], float),
            "DEC": np.asarray(rows["dec"], float),
            "MAG": np.asarray(rows["R"], float),
        }
    ).write(path, overwrite=True)
    return path


def star_table(path: Path, ra: np.ndarray, dec: np.ndarray) -> Path:
    mag = np.linspace(10.0, 18.0, len(ra))
    Table({"RA": ra, "DEC": dec, "MAG": mag}).write(path, overwrite=True)
    return path


def build_tile(catalog: Path, out: Path, scale: int, tile: int, nside: int = 2) -> Path:
    """One index file of ``scale`` restricted to astrometry.net HEALPix ``tile``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            builder(),
            "-i", str(catalog), "-e", "1", "-o", str(out),
            "-P", str(scale), "-S", "MAG", "-E",
            "-H", str(tile), "-s", str(nside),
            "-I", str(5200 + scale), "-j", "0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return out


def mirror_series(root: Path, base_url: str, name: str = "5200") -> astrometry.series.Series:
    """A copy of the 5200 series whose sizes are those of the files under ``root/name``.

    File names, tiles and nside come from the package's real series; only the
    sizes are those of the files built for the test (a file not built keeps the
    real size and is absent from the mirror).
    """
    real = SERIES[name]
    sizes = {}
    for scale, tiles in real.scale_to_sizes.items():
        row = list(tiles)
        for tile in range(len(row)):
            path = root / name / f"index-52{scale:02d}-{tile:02d}.fits"
            if path.exists():
                row[tile] = path.stat().st_size
        sizes[scale] = tuple(row)
    return astrometry.series.Series(
        name=real.name,
        description="test mirror",
        scale_to_sizes=sizes,
        url_pattern=base_url.rstrip("/") + f"/{name}/index-52{{scale}}{{index}}.fits",
    )


class Mirror:
    """Serves ``root`` over HTTP on 127.0.0.1 with Range support and injectable drops."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.requests: Counter[str] = Counter()
        self.ranges: list[tuple[str, str]] = []
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the drop (once)
        self.ignore_ranges = False  # answer every request with the whole file (200)
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(mirror.root), **kwargs)

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                mirror.requests[path] += 1
                file = mirror.root / path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = 0
                header = self.headers.get("Range")
                if header and mirror.ignore_ranges:
                    mirror.ranges.append((path, header))
                    header = None
                if header:
                    mirror.ranges.append((path, header))
                    start = int(re.match(r"bytes=(\d+)-", header).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                drop = mirror.drop_after.pop(path, None)
                if drop is not None:
                    self.wfile.write(body[:drop])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
