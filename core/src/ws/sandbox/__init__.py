"""Core's ``sandbox`` network, a network plugin like any other (see :mod:`ws.sandbox.plugin`); the host
pieces it is made of (bridge, nftables table, DNS forwarder, host files) are in :mod:`ws.network`."""
