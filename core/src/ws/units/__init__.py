"""systemd units that start ws's networks, network agents and autostart workspaces at boot.

``render`` turns the configuration into unit files (pure); ``install`` writes, enables, starts and removes
them over D-Bus and keeps a record of what it wrote, so ``ws apply`` can keep them current. See
docs/systemd.md for the units, their order and what happens at boot, on a change and on an nftables reload.
"""
