"""Model tests never reach a real provider (see tests/offline.py)."""

from offline import no_real_provider  # noqa: F401  (an autouse fixture)
