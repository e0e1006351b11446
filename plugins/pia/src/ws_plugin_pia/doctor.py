"""``ws doctor`` for PIA: the CA file, the password file's mode and owner, the server list (fetched and,
with a key configured, verified) and the credentials (a token request). Nothing secret is printed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ws.errors import WsError
from ws.types import CheckStatus, DoctorCheck

if TYPE_CHECKING:
    from ws.context import Context

    from ws_plugin_pia.settings import PiaSettings


CA_FIX = "set pia.ca_file to PIA's ca.rsa.4096.crt"


def checks(ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_pia.settings import PiaSettings

    settings = ctx.config.sections.get("pia") or PiaSettings()
    if not settings.configured:
        return [DoctorCheck("pia: configuration", CheckStatus.OK, "no [pia] section: the VPN is not used")]
    result = [_ca_check(settings), _password_check(settings)]
    if any(check.status == CheckStatus.FAIL for check in result):
        return result
    return result + _api_checks(settings, ctx)


def _ca_check(settings: PiaSettings) -> DoctorCheck:
    from cryptography import x509

    assert settings.ca_file is not None
    try:
        certificates = x509.load_pem_x509_certificates(settings.ca_file.read_bytes())
    except (OSError, ValueError) as exc:
        return DoctorCheck("pia: CA", CheckStatus.FAIL, f"pia.ca_file {settings.ca_file}: {exc}", CA_FIX)
    subject = certificates[0].subject.rfc4514_string()
    return DoctorCheck("pia: CA", CheckStatus.OK, f"{settings.ca_file} ({subject})")


def _password_check(settings: PiaSettings) -> DoctorCheck:
    from ws_plugin_pia.settings import check_password_file

    assert settings.password_file is not None
    try:
        check_password_file(settings.password_file)
    except ValueError as exc:
        fix = f"chown root {settings.password_file} && chmod 600 {settings.password_file}"
        return DoctorCheck("pia: password file", CheckStatus.FAIL, f"pia.password_file: {exc}", fix)
    return DoctorCheck("pia: password file", CheckStatus.OK, f"{settings.password_file} (root, 0600)")


def _api_checks(settings: PiaSettings, ctx: Context) -> list[DoctorCheck]:
    from ws_plugin_pia import serverlist
    from ws_plugin_pia.auth import Tokens
    from ws_plugin_pia.store import PiaPaths
    from ws_plugin_pia.transport import PiaHttp

    result = []
    with PiaHttp.from_settings(settings) as http:
        try:
            servers = serverlist.fetch(http, settings)
        except WsError as exc:
            return [DoctorCheck("pia: server list", CheckStatus.FAIL, str(exc), "check pia.serverlist_url and ca_file")]
        verified = "signature verified" if servers.signed else "signature not checked (no serverlist_pubkey_file)"
        status = CheckStatus.OK if servers.signed else CheckStatus.WARN
        result.append(DoctorCheck("pia: server list", status, f"{len(servers.regions)} regions, {verified}"))
        try:
            Tokens(http, settings, PiaPaths.under(ctx.state.root)).renew()
        except WsError as exc:
            result.append(DoctorCheck("pia: credentials", CheckStatus.FAIL, str(exc), "check pia.username"))
        else:
            result.append(DoctorCheck("pia: credentials", CheckStatus.OK, f"token issued for {settings.username}"))
    return result
