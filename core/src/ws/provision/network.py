"""The guest's static network configuration (systemd-networkd)."""

from __future__ import annotations

from ws.types import NetworkAttachment, ProvisionFile, Workspace

NETWORK_FILE = "/etc/systemd/network/10-ws.network"
MATCH_NAMES = "host0 eth* en*"
"""nspawn's veth is ``host0``, Incus names its NIC ``eth0``, VM NICs are ``eth*`` or ``en*``. The file sorts
before systemd's own ``80-container-host0.network`` (DHCP), so it wins."""


def networkd_file(workspace: Workspace, attachment: NetworkAttachment) -> ProvisionFile:
    """Static address, gateway and DNS from the attachment; no DHCP, no IPv6 autoconfiguration.

    The MAC is the workspace's own whatever the backend gave the NIC (nspawn derives one from the machine
    name): the host's bridge table lets each workspace port send only that MAC (docs/network.md)."""
    dns = "".join(f"DNS={server}\n" for server in attachment.dns)
    text = (
        "# Written by ws: the workspace's static address on its network.\n"
        "[Match]\n"
        f"Name={MATCH_NAMES}\n"
        "\n"
        "[Link]\n"
        f"MACAddress={workspace.mac}\n"
        f"MTUBytes={attachment.mtu}\n"
        "\n"
        "[Network]\n"
        f"Address={workspace.ip}/{attachment.prefixlen}\n"
        f"Gateway={attachment.gateway}\n"
        f"{dns}"
        "DHCP=no\n"
        "LinkLocalAddressing=no\n"
        "IPv6AcceptRA=no\n"
    )
    return ProvisionFile(NETWORK_FILE, text.encode())
