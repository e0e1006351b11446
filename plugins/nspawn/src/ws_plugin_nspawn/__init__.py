"""ws-plugin-nspawn: ephemeral, unprivileged systemd-nspawn workspaces (see docs/backends/nspawn.md)."""
