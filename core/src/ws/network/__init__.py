"""The host side of the ``sandbox`` network: bridge, firewall, DNS forwarder and host integration files.

:mod:`ws.network.sandbox` puts the pieces together; each other module owns one kind of host object.
"""
