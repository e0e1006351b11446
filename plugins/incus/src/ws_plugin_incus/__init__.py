"""ws backend plugin for Incus (see docs/backends/incus.md)."""
