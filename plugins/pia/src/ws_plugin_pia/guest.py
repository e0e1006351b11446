"""What a service workspace on the VPN network gets in its provisioning bundle: sshd starts only once a name
resolves through the tunnel, so ``ws up`` returns a workspace whose traffic already has its way out (and with
no tunnel it has no way out at all: its gateway is the endpoint, which routes nowhere but the tunnel)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ws.api import ProvisionFile

WAIT_SCRIPT = "/usr/local/libexec/ws-vpn-wait"
SSH_DROP_IN = "/etc/systemd/system/ssh.service.d/ws-vpn-wait.conf"


def wait_files(name: str, endpoint: str) -> list[ProvisionFile]:
    from ws.types import ProvisionFile

    script = (
        "#!/bin/sh\n"
        "# Written by ws: wait until the VPN tunnel answers (a DNS answer through the endpoint) before sshd starts.\n"
        f'echo "ws-vpn-wait: waiting for {name} through the VPN endpoint {endpoint}"\n'
        "answers() {\n"
        f"    if command -v dig >/dev/null; then dig +short +time=2 +tries=1 @{endpoint} {name} A | grep -q .\n"
        f"    else getent ahostsv4 {name} >/dev/null 2>&1; fi\n"
        "}\n"
        "until answers; do sleep 1; done\n"
        'echo "ws-vpn-wait: the tunnel answers"\n'
    )
    drop_in = (
        f"[Unit]\nAfter=systemd-networkd.service\n\n[Service]\nExecStartPre={WAIT_SCRIPT}\nTimeoutStartSec=infinity\n"
    )
    return [ProvisionFile(WAIT_SCRIPT, script.encode(), mode=0o755), ProvisionFile(SSH_DROP_IN, drop_in.encode())]
