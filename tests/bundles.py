"""Unpacking a bundle and packing it again, as a forger would (tests of ``verify``)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path


def unpacked(bundle: Path, dest: Path) -> Path:
    with tarfile.open(bundle) as tar:
        tar.extractall(dest, filter="data")
    return dest


def repack(root: Path, out: Path, *, reseal: bool) -> Path:
    """Tar ``root`` again; with ``reseal``, rewrite the manifest's hashes to match (a careful
    forger), so only the checks that recompute things can catch the change."""
    if reseal:
        manifest = json.loads((root / "MANIFEST.json").read_text())
        manifest["files"] = {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "MANIFEST.json"}
        (root / "MANIFEST.json").write_text(json.dumps(manifest))
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(root).as_posix())
    return out
