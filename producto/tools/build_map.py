"""Turn us-atlas's ``states-albers-10m.json`` (TopoJSON) into ``producto/static/us-states.json``.

Run once by a person, not by the app or the tests; the output is committed::

    npm pack us-atlas@3.0.1 && tar xzf us-atlas-3.0.1.tgz
    python -m producto.tools.build_map package/states-albers-10m.json producto/static/us-states.json

The input is already projected (Albers USA, 975 x 610), so each state becomes one SVG path
string keyed by its two-letter postal code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# FIPS state code -> postal code, for the 50 states and DC.
FIPS = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL",
    "18": "IN", "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD",
    "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE",
    "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND",
    "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD",
    "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA", "54": "WV",
    "55": "WI", "56": "WY",
}  # fmt: skip


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """The topology's arcs as absolute coordinates (undoing quantisation and delta coding)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring_points(ring: list[int], arcs: list) -> list[tuple[float, float]]:
    """One closed ring: its arcs joined, a negative index ``~i`` meaning arc ``i`` reversed."""
    points: list[tuple[float, float]] = []
    for index in ring:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def ring_path(points: list[tuple[float, float]]) -> str:
    """An SVG subpath, rounded to 0.1 px, with repeated points dropped."""
    out: list[str] = []
    last = None
    for x, y in points:
        here = f"{x:.1f},{y:.1f}"
        if here != last:
            out.append(here)
            last = here
    return "M" + "L".join(out) + "Z"


def geometry_path(geometry: dict, arcs: list) -> str:
    polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    return "".join(ring_path(ring_points(ring, arcs)) for polygon in polygons for ring in polygon)


def build(topology: dict) -> dict:
    arcs = decode_arcs(topology)
    states = {}
    for geometry in topology["objects"]["states"]["geometries"]:
        code = FIPS[geometry["id"]]
        states[code] = {"name": geometry["properties"]["name"], "d": geometry_path(geometry, arcs)}
    if set(states) != set(FIPS.values()):
        raise SystemExit(f"expected 51 shapes, got {sorted(states)}")
    return {
        "source": "us-atlas 3.0.1 states-albers-10m.json (U.S. Census Bureau cartographic "
        "boundaries, 1:10m; ISC licence, Copyright 2013-2019 Michael Bostock)",
        "viewBox": "0 0 975 610",
        "states": dict(sorted(states.items())),
    }


def main(argv: list[str]) -> None:
    source, target = (Path(a) for a in argv)
    target.write_text(json.dumps(build(json.loads(source.read_text())), separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1:])
