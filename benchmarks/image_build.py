"""ws's image: a cold build with the real mmdebstrap against a cache hit of the same recipe, same run.

The cold build goes into a throwaway state directory (removed at the end), so the figures never come from an
earlier cache; the hit is the median of several ``ensure_image`` calls on it. Needs root and mmdebstrap.

    sudo .venv/bin/python benchmarks/image_build.py [--kernel] [--hits 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ws.config.model import CoreConfig
from ws.images import ensure_image, recipe_for
from ws.images.progress import ProgressDisplay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", action="store_true", help="build the microVM variant (with a kernel)")
    parser.add_argument("--hits", type=int, default=5)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="ws-bench-image-", dir="/var/tmp"))
    state.chmod(0o755)  # like /var/lib/ws: apt downloads as _apt, which must reach the tree
    try:
        recipe = recipe_for(CoreConfig(state_dir=state), with_kernel=args.kernel)
        started = time.perf_counter()
        with ProgressDisplay("cold build") as progress:
            image = ensure_image(state, recipe, progress=progress)
        cold = time.perf_counter() - started
        assert image.fresh
        hits = []
        for _ in range(args.hits):
            started = time.perf_counter()
            assert not ensure_image(state, recipe).fresh
            hits.append(time.perf_counter() - started)
        hit = statistics.median(hits)
        print(f"image {image.name} {image.hash} ({'with' if args.kernel else 'without'} kernel)")
        tar_mib, all_mib = image.rootfs_tar.stat().st_size / 2**20, image.size / 2**20
        print(f"rootfs.tar     {tar_mib:8.1f} MiB (all files {all_mib:.1f} MiB)")
        print(f"cold build     {cold:8.1f} s")
        print(f"cache hit      {hit * 1000:8.2f} ms (median of {len(hits)})")
        print(f"cold / hit     {cold / hit:8.0f} x")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
