"""The file hunt some isolation tests run inside a sandbox: read every regular file it can (the
first MiB; .gz files decompressed too) outside /proc, /sys and /dev, and report each whose name
mentions HumanEval or whose content holds one of the needles (bytes).

``HUNT_FUNCTION`` is source text defining ``hunt(needles) -> list[str]``, stdlib only, for a
test to paste into the code it runs in the sandbox."""

from __future__ import annotations

HUNT_FUNCTION = '''
def hunt(needles):
    import gzip, os
    found = []
    for dirpath, dirs, files in os.walk("/"):
        if dirpath == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    data = f.read(1 << 20)
                if name.endswith(".gz"):
                    data += gzip.decompress(data)[: 1 << 20]
            except (OSError, EOFError, ValueError):
                data = b""  # unreadable: its name still counts
            if "humaneval" in name.lower() or any(n in data for n in needles):
                found.append(path)
    return sorted(found)
'''
