"""Coding-agent set-up inside guests: onboarding state and the permission-skipping wrapper.

No host credentials of any kind are passed in: the user logs the agent in inside the guest, and the login
persists in the workspace's agent folder on the host.
"""

from __future__ import annotations

import json

from ws.provision.steps import FirstBootStep
from ws.provision.user import LoginUser
from ws.types import ProvisionFile

CLAUDE_TEMPLATE = "/usr/local/share/ws/claude.json"
"""First boot copies this to ``~/.claude.json`` if that is missing (the file is the agent's own state)."""
WRAPPER = "/usr/local/bin/claude"
"""/usr/local/bin comes before /usr/bin in every default PATH a session starts with (sshd's for commands
run without a login shell, /etc/profile's, ``incus exec``'s, systemd's), so every session finds the
wrapper without a profile script; ws's image installs the real Claude Code under /usr (see
:data:`ws.images.build.NPM_INSTALL_HOOK`)."""


def claude_json(user: LoginUser) -> bytes:
    """Onboarding done and the work folder trusted, byte for byte what the original wrote."""
    state = {
        "hasCompletedOnboarding": True,
        "projects": {user.workspace_dir: {"hasTrustDialogAccepted": True}},
        "theme": "dark",
    }
    return json.dumps(state, separators=(",", ":")).encode()


WRAPPER_SCRIPT = f"""\
#!/bin/sh
# Written by ws: run the real claude without permission prompts (the workspace is the sandbox).
# The real one is the next claude in PATH, else the native installer's ~/.local/bin/claude.
search="$PATH:${{HOME:-/nonexistent}}/.local/bin"
IFS=:
for dir in $search; do
    [ -n "$dir" ] || continue
    [ "$dir/claude" -ef "{WRAPPER}" ] && continue
    if [ -x "$dir/claude" ] && [ ! -d "$dir/claude" ]; then
        exec "$dir/claude" --dangerously-skip-permissions "$@"
    fi
done
echo "claude: the Claude Code CLI is not installed in this guest" >&2
exit 127
"""


def agent_files(user: LoginUser, skip_permissions: bool) -> list[ProvisionFile]:
    files = [ProvisionFile(CLAUDE_TEMPLATE, claude_json(user))]
    if skip_permissions:
        files.append(ProvisionFile(WRAPPER, WRAPPER_SCRIPT.encode(), mode=0o755))
    return files


def claude_step(user: LoginUser) -> FirstBootStep:
    """Only if missing: the agent rewrites this file itself, and a kept guest must keep its changes."""
    target = f"{user.home}/.claude.json"
    script = f"""\
if [ ! -e {target} ] && [ ! -L {target} ]; then
    install -m 0600 -o {user.uid} -g {user.gid} {CLAUDE_TEMPLATE} {target}
fi
"""
    return FirstBootStep("claude-config", f"{target} (mode 600) from {CLAUDE_TEMPLATE} if missing", script)
