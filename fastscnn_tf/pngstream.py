"""PNG files written a band of rows at a time, so that a picture the size of a large photo never
has to exist whole in memory (`fastscnn predict`'s masks and overlays of a 80-megapixel photo).

The format is PNG's simplest valid form: 8-bit greyscale (`L`) or RGB, every row with filter
type 0 (None), one zlib stream split over IDAT chunks. PIL and every browser read it.
"""

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {"L": (0, 1), "RGB": (2, 3)}  # PNG colour type, channels
_CHUNK = 1 << 20  # IDAT payload per chunk


def _chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


class PNGWriter:
    """Write a `width` x `height` PNG of `mode` ("L" or "RGB") to the binary file `f` in bands:
    `write(rows)` takes uint8 `(n, width)` or `(n, width, 3)` arrays until `height` rows are in,
    then `close()` ends the file (an error if rows are missing)."""

    def __init__(self, f, width, height, mode="RGB", level=6):
        if mode not in _COLOUR_TYPES:
            raise ValueError(f"PNGWriter: mode {mode!r}: use L or RGB.")
        self.f, self.width, self.height, self.mode = f, int(width), int(height), mode
        colour_type, self.channels = _COLOUR_TYPES[mode]
        self.rows = 0
        self.compressor = zlib.compressobj(level)
        self.pending = b""
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, colour_type, 0, 0, 0)
        f.write(_SIGNATURE + _chunk(b"IHDR", header))

    def write(self, rows):
        rows = np.asarray(rows, np.uint8)
        expected = (self.width,) if self.channels == 1 else (self.width, self.channels)
        if rows.shape[1:] != expected:
            raise ValueError(f"PNGWriter: rows of shape {rows.shape[1:]}, expected {expected}.")
        if self.rows + len(rows) > self.height:
            raise ValueError(f"PNGWriter: more than {self.height} rows.")
        flat = rows.reshape(len(rows), -1)
        filtered = np.concatenate([np.zeros((len(rows), 1), np.uint8), flat], axis=1)
        self._emit(self.compressor.compress(filtered.tobytes()))
        self.rows += len(rows)

    def _emit(self, data):
        self.pending += data
        while len(self.pending) >= _CHUNK:
            self.f.write(_chunk(b"IDAT", self.pending[:_CHUNK]))
            self.pending = self.pending[_CHUNK:]

    def close(self):
        if self.rows != self.height:
            raise ValueError(f"PNGWriter: {self.rows} of {self.height} rows written.")
        self._emit(self.compressor.flush())
        if self.pending:
            self.f.write(_chunk(b"IDAT", self.pending))
        self.f.write(_chunk(b"IEND", b""))
