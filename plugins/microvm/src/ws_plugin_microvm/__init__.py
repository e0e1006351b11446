"""ws-plugin-microvm: ephemeral qemu microVMs for ws (see docs/backends/microvm.md)."""
