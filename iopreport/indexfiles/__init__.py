"""astrometry.net index files for the real sky: which are needed, what is present, downloads.

``series`` names the published index series (from the ``astrometry`` package),
``tiles`` finds the HEALPix tiles of astrometry.net's own numbering that cover
a field, ``plan`` works out the files each catalog source and instrument
needs, ``identify`` recognises index files by their FITS header, and ``fetch``
downloads what is missing (the only module here that uses the network).
"""
