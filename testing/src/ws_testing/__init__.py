"""ws-testing: boot a real Debian host in qemu and run ws inside it (the ``vm`` test tier)."""
