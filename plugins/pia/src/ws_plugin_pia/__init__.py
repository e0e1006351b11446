"""ws-plugin-pia: Private Internet Access WireGuard client for ws (see docs/vpn.md)."""
