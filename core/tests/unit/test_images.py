"""ws.images without mmdebstrap: recipe hashing, the cache (with an in-process build function writing a tiny
tarball), atomic builds, host apt sources, progress condensing and the mmdebstrap command line."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from ws.config.model import CoreConfig
from ws.errors import UsageError, WsError
from ws.images import (
    DEFAULT_IMAGE,
    current_image,
    ensure_image,
    is_ws_image,
    list_images,
    recipe_for,
    remove_image,
)
from ws.images.build import mmdebstrap_command, run_with_progress
from ws.images.progress import ProgressDisplay, condense
from ws.images.recipe import Recipe
from ws.images.sources import image_sources
from ws.images.store import clean_stale, images_dir


def config(**sections) -> CoreConfig:
    return CoreConfig.model_validate(sections)


# --- recipe and its hash -----------------------------------------------------------------------------------


def test_same_recipe_same_hash():
    first = recipe_for(config(images={"packages": ["jq", "make"]}))
    second = recipe_for(config(images={"packages": ["make", "jq", "jq"]}))
    assert first == second and first.hash == second.hash
    assert len(first.hash) == 16 and int(first.hash, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"suite": "trixie"},
        {"packages": ("jq",)},
        {"extras": ("npm:@anthropic-ai/claude-code",)},
        {"variant": "apt"},
        {"architecture": "arm64"},
        {"with_kernel": True},
        {"dpkg_excludes": ()},
        {"schema": 999},
        {"name": "other"},
    ],
)
def test_any_content_change_changes_the_hash(change):
    base = recipe_for(config())
    if "packages" in change:
        change = {"packages": tuple(sorted({*base.packages, *change["packages"]}))}
    assert dataclasses.replace(base, **change).hash != base.hash


def test_config_changes_reach_the_recipe():
    base = recipe_for(config())
    assert recipe_for(config(images={"packages": ["jq"]})).hash != base.hash
    agent = recipe_for(config(agent={"install_claude_code": True}))
    assert agent.hash != base.hash and {"nodejs", "npm"} <= set(agent.packages)
    kernel = recipe_for(config(), with_kernel=True)
    assert kernel.hash != base.hash and any(p.startswith("linux-image-") for p in kernel.packages)


def test_sources_file_is_a_build_input_not_content(tmp_path):
    with_sources = recipe_for(config(images={"sources": str(tmp_path / "x.sources")}))
    assert with_sources.sources == tmp_path / "x.sources"
    assert with_sources.hash == recipe_for(config()).hash
    assert "sources" not in with_sources.to_dict()


def test_recipe_round_trips_through_its_dict():
    recipe = recipe_for(config(images={"packages": ["jq"]}), with_kernel=True)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_base_packages_are_the_guest_base():
    packages = set(recipe_for(config()).packages)
    assert {"systemd-sysv", "openssh-server", "opendoas", "bind9-dnsutils", "kmod", "systemd-resolved"} <= packages
    assert "sudo" not in packages


def test_only_ws_images_are_ws_images():
    assert is_ws_image(DEFAULT_IMAGE)
    assert not is_ws_image("images:debian/12")
    with pytest.raises(UsageError, match="not an image ws builds"):
        recipe_for(config(), name="images:debian/12")


def test_image_package_names_are_checked():
    with pytest.raises(Exception, match="not a Debian package name"):
        config(images={"packages": ["--allow-unauthenticated"]})


# --- the cache with an in-process build function -----------------------------------------------------------


class FakeBuild:
    """Writes a tiny rootfs tarball (and kernel files when asked), counting calls; can be told to fail."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.fail = fail

    def __call__(self, recipe: Recipe, workdir: Path, progress) -> None:
        self.calls += 1
        progress("installing packages")
        content = f"{recipe.hash}\n".encode()
        info = tarfile.TarInfo("./etc/ws-fake")
        info.size = len(content)
        with tarfile.open(workdir / "rootfs.tar", "w") as tar:
            tar.addfile(info, io.BytesIO(content))
        if self.fail:
            raise WsError("the build broke")
        if recipe.with_kernel:
            (workdir / "vmlinuz").write_bytes(b"kernel")
            (workdir / "initrd.img").write_bytes(b"initrd")


def test_first_ensure_builds_second_hits_the_cache(state_dir):
    build, phases = FakeBuild(), []
    recipe = recipe_for(config())
    first = ensure_image(state_dir, recipe, progress=phases.append, build=build)
    second = ensure_image(state_dir, recipe, build=build)
    assert build.calls == 1 and first.fresh and not second.fresh
    assert first == second and first.hash == recipe.hash
    assert first.path == state_dir / "images" / DEFAULT_IMAGE / recipe.hash
    assert "installing packages" in phases and phases[-1] == "done"
    assert first.kernel is None and first.initrd is None
    assert current_image(state_dir, recipe) == first


def test_manifest_describes_the_build(state_dir):
    recipe = recipe_for(config(), with_kernel=True)
    image = ensure_image(state_dir, recipe, build=FakeBuild())
    manifest = json.loads((image.path / "manifest.json").read_text())
    assert manifest["name"] == DEFAULT_IMAGE and manifest["hash"] == recipe.hash
    assert Recipe.from_dict(manifest["recipe"]) == recipe
    assert manifest["created"].endswith("Z")
    rootfs_sha = hashlib.sha256(image.rootfs_tar.read_bytes()).hexdigest()
    assert manifest["files"]["rootfs.tar"]["sha256"] == rootfs_sha
    assert set(manifest["files"]) == {"rootfs.tar", "vmlinuz", "initrd.img"}
    assert manifest["size"] == sum(p.stat().st_size for p in image.path.iterdir() if p.name != "manifest.json")
    assert image.kernel.read_bytes() == b"kernel" and image.initrd.read_bytes() == b"initrd"
    assert image.recipe == recipe


def test_list_and_remove(state_dir):
    build = FakeBuild()
    plain = ensure_image(state_dir, recipe_for(config()), build=build)
    kernel = ensure_image(state_dir, recipe_for(config(), with_kernel=True), build=build)
    assert {image.hash for image in list_images(state_dir)} == {plain.hash, kernel.hash}
    assert remove_image(state_dir, DEFAULT_IMAGE, [plain.hash]) == [plain.hash]
    assert [image.hash for image in list_images(state_dir)] == [kernel.hash]
    with pytest.raises(UsageError, match="has no build 0000000000000000"):
        remove_image(state_dir, DEFAULT_IMAGE, ["0000000000000000"])
    assert remove_image(state_dir, DEFAULT_IMAGE) == [kernel.hash]
    assert list_images(state_dir) == [] and not images_dir(state_dir, DEFAULT_IMAGE).exists()
    assert remove_image(state_dir, DEFAULT_IMAGE) == []


def test_a_failing_build_leaves_no_image_and_no_temp_folder(state_dir):
    recipe = recipe_for(config())
    with pytest.raises(WsError, match="the build broke"):
        ensure_image(state_dir, recipe, build=FakeBuild(fail=True))
    assert list(images_dir(state_dir, recipe.name).iterdir()) == []
    assert current_image(state_dir, recipe) is None


def test_an_interrupted_build_leaves_no_image(state_dir):
    def interrupted(recipe, workdir, progress):
        (workdir / "rootfs.tar").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_image(state_dir, recipe_for(config()), build=interrupted)
    assert list(images_dir(state_dir, DEFAULT_IMAGE).iterdir()) == []


def test_stale_temp_folder_of_a_dead_process_is_cleaned(state_dir):
    recipe = recipe_for(config())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = images_dir(state_dir, recipe.name)
    stale = folder / f".tmp-{recipe.hash}-{dead.pid}"
    live = folder / f".tmp-{recipe.hash}-{os.getppid()}"
    for path in (stale, live):
        (path / "tmp").mkdir(parents=True)
        (path / "rootfs.tar").write_bytes(b"half")
    image = ensure_image(state_dir, recipe, build=FakeBuild())
    assert not stale.exists() and live.exists(), "only folders of dead owners are removed"
    assert image.fresh and list_images(state_dir) == [image]
    assert clean_stale(state_dir, recipe.name) == []


def test_a_folder_without_manifest_is_not_an_image_and_is_rebuilt(state_dir):
    recipe = recipe_for(config())
    broken = images_dir(state_dir, recipe.name) / recipe.hash
    broken.mkdir(parents=True)
    (broken / "rootfs.tar").write_bytes(b"half")
    assert current_image(state_dir, recipe) is None and list_images(state_dir) == []
    image = ensure_image(state_dir, recipe, build=FakeBuild())
    assert image.fresh and image.path == broken and (broken / "manifest.json").is_file()


def test_a_truncated_file_invalidates_the_build(state_dir):
    recipe = recipe_for(config())
    image = ensure_image(state_dir, recipe, build=FakeBuild())
    image.rootfs_tar.write_bytes(b"x")
    assert current_image(state_dir, recipe) is None
    assert ensure_image(state_dir, recipe, build=FakeBuild()).fresh


# --- apt sources ---------------------------------------------------------------------------------------------


def fake_etc(tmp_path: Path, os_release: str, sources: dict[str, str]) -> Path:
    etc = tmp_path / "etc"
    (etc / "apt" / "sources.list.d").mkdir(parents=True)
    (etc / "os-release").write_text(os_release)
    for name, text in sources.items():
        (etc / "apt" / name).write_text(text)
    return etc


TRIXIE = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_CODENAME=trixie\n'


def test_host_sources_are_pointed_at_the_image_suite(tmp_path):
    etc = fake_etc(
        tmp_path,
        TRIXIE,
        {
            "sources.list.d/debian.sources": "Types: deb deb-src\nURIs: http://mirror.invalid/debian\n"
            "Suites: trixie trixie-updates\nComponents: main contrib\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb\nURIs: http://mirror.invalid/other\nSuites: sid\nComponents: main\n\n"
            "# disabled\nTypes: deb\nEnabled: no\nURIs: http://mirror.invalid/x\nSuites: trixie\n",
            "sources.list": "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/security "
            "trixie-security main\ndeb-src http://mirror.invalid/debian trixie main\n",
        },
    )
    text = image_sources("bookworm", etc=etc)
    assert text == (
        "Types: deb\nURIs: http://mirror.invalid/security\nSuites: bookworm-security\nComponents: main\n"
        "Architectures: amd64\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def test_non_debian_host_is_told_what_to_do(tmp_path):
    etc = fake_etc(tmp_path, "ID=fedora\nVERSION_ID=40\n", {})
    with pytest.raises(UsageError, match=r"not Debian.*mmdebstrap.*\[images\] sources"):
        image_sources("bookworm", etc=etc)


def test_sources_override_is_used_as_is(tmp_path):
    override = tmp_path / "my.sources"
    override.write_text("Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n")
    assert image_sources("bookworm", override, etc=tmp_path / "nothing") == override.read_text()
    with pytest.raises(UsageError, match="cannot read"):
        image_sources("bookworm", tmp_path / "missing.sources")


def test_credentials_in_host_sources_are_refused(tmp_path):
    etc = fake_etc(tmp_path, TRIXIE, {"sources.list": "deb https://user:pw@mirror.invalid/debian trixie main\n"})
    with pytest.raises(UsageError, match="credentials"):
        image_sources("bookworm", etc=etc)


def test_host_without_matching_sources(tmp_path):
    etc = fake_etc(tmp_path, TRIXIE, {"sources.list": "deb http://mirror.invalid/debian sid main\n"})
    with pytest.raises(UsageError, match="no enabled 'deb' entry for trixie"):
        image_sources("bookworm", etc=etc)


# --- progress --------------------------------------------------------------------------------------------------


MMDEBSTRAP_OUTPUT = """\
I: chroot architecture amd64 is equal to the host's architecture
I: finding correct signed-by value...
I: using /tmp/mmdebstrap.QHgLkYCHdN as tempdir
I: running apt-get update...
Get:1 http://mirror.invalid bookworm InRelease [151 kB]
I: downloading packages with apt...
I: extracting archives...
I: installing essential packages...
Setting up libc6 (2.36-9) ...
I: installing remaining packages inside the chroot...
W: Download is performed unsandboxed as root
I: running --customize-hook in shell: sh -c 'rm -f "$1"/etc/ssh/ssh_host_*' exec /tmp/x
I: cleaning package lists and apt cache...
I: creating tarball...
I: done
I: success in 64.5876 seconds
"""


def test_mmdebstrap_output_is_condensed_to_phases():
    phases = [phase for line in MMDEBSTRAP_OUTPUT.splitlines() if (phase := condense(line))]
    assert phases == [
        "updating package lists",
        "downloading packages",
        "extracting essential packages",
        "installing essential packages",
        "installing packages",
        "W: Download is performed unsandboxed as root",
        "customizing",
        "cleaning up",
        "writing the root file system tarball",
    ]


def test_plain_progress_prints_each_phase_once():
    stream = io.StringIO()
    with ProgressDisplay("debian-bookworm", stream=stream, tty=False) as display:
        for phase in ("downloading packages", "downloading packages", "installing packages"):
            display(phase)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].endswith("s] debian-bookworm: downloading packages") and lines[0].startswith("[")


def test_terminal_progress_redraws_one_line():
    stream = io.StringIO()
    with ProgressDisplay("img", stream=stream, tty=True) as display:
        display("downloading packages")
        display("installing packages")
    out = stream.getvalue()
    assert out.count("\r\033[K") >= 2 and out.endswith("installing packages\n") and out.count("\n") == 1


def test_run_with_progress_reports_phases_and_failures():
    phases = []
    script = "echo 'I: running apt-get update...'; echo 'E: something broke' >&2; exit 3"
    with pytest.raises(WsError, match=r"exited with status 3(.|\n)*E: something broke"):
        run_with_progress(["sh", "-c", script], dict(os.environ), phases.append)
    assert phases == ["updating package lists", "E: something broke"]
    run_with_progress(["sh", "-c", "echo 'I: creating tarball...'"], dict(os.environ), phases.append)
    assert phases[-1] == "writing the root file system tarball"


# --- the mmdebstrap command ------------------------------------------------------------------------------------


def test_command_makes_a_generic_tree(tmp_path):
    recipe = recipe_for(config())
    command = mmdebstrap_command(recipe, tmp_path)
    assert command[0] == "mmdebstrap" and "--variant=minbase" in command and "--format=tar" in command
    assert f"--include={','.join(recipe.packages)}" in command
    assert 'rm -f "$1"/etc/ssh/ssh_host_*' in " ".join(command)
    assert command[-3:] == ["bookworm", str(tmp_path / "rootfs.tar"), str(tmp_path / "debian.sources")]
    assert not any("vmlinuz" in part or "npm" in part for part in command)
    assert not any("://" in part for part in command), "no mirror is named"


def test_command_copies_the_kernel_out_and_installs_claude_code(tmp_path):
    recipe = recipe_for(config(agent={"install_claude_code": True}), with_kernel=True)
    hooks = " ".join(part for part in mmdebstrap_command(recipe, tmp_path) if part.startswith("--customize-hook"))
    assert f"{tmp_path}/vmlinuz" in hooks and f"{tmp_path}/initrd.img" in hooks
    assert (
        "npm install --global --prefix /tmp/ws-npm --ignore-scripts" in hooks and "@anthropic-ai/claude-code@" in hooks
    )
    assert 'chroot --userspec=65534:65534 "$1"' in hooks  # npm never runs as root on the build host
    # only Claude Code's own postinstall (it places the platform binary) runs, also as nobody
    assert 'chroot --userspec=65534:65534 "$1" env HOME=/tmp/ws-npm sh -c \'cd /tmp/ws-npm/lib/node_modules/' in hooks


def test_claude_code_is_pinned_in_the_recipe_and_its_scripts_never_run(tmp_path, monkeypatch):
    from ws.images import build, recipe

    pinned = recipe_for(config(agent={"install_claude_code": True}))
    assert pinned.extras == (f"npm:@anthropic-ai/claude-code@{recipe.CLAUDE_CODE_VERSION}",)
    command = " ".join(mmdebstrap_command(pinned, tmp_path))
    assert f"@anthropic-ai/claude-code@{recipe.CLAUDE_CODE_VERSION}" in command and "--ignore-scripts" in command
    monkeypatch.setattr(recipe, "CLAUDE_CODE_VERSION", "9.9.9")
    monkeypatch.setattr(build, "CLAUDE_CODE_VERSION", "9.9.9")
    raised = recipe_for(config(agent={"install_claude_code": True}))
    assert raised.hash != pinned.hash  # a new version is a new image
    with pytest.raises(WsError, match="cannot build recipe extra"):
        mmdebstrap_command(pinned, tmp_path)  # an old recipe's version is never installed as another


# --- the CLI on a cache filled by the fake build -----------------------------------------------------------------


def test_cli_lists_and_removes_images(write_config, state_dir, cli_invoke):
    path = write_config('[images]\npackages = ["jq"]\n')
    current = ensure_image(state_dir, recipe_for(config(images={"packages": ["jq"]})), build=FakeBuild())
    old = ensure_image(state_dir, recipe_for(config()), build=FakeBuild())

    result = cli_invoke("--config", str(path), "image", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = {entry["hash"]: entry for entry in json.loads(result.stdout)}
    assert set(listed) == {current.hash, old.hash}
    assert listed[current.hash]["current"] and not listed[old.hash]["current"]
    assert listed[current.hash]["size"] == current.size and listed[current.hash]["name"] == DEFAULT_IMAGE
    assert listed[current.hash]["created"] == current.created and not listed[current.hash]["kernel"]

    table = cli_invoke("--config", str(path), "image", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "HASH", "SIZE", "CREATED", "KERNEL", "CURRENT"]
    assert any(
        line.startswith(DEFAULT_IMAGE) and line.split()[1] == current.hash and line.endswith("*") for line in table
    )

    removed = cli_invoke("--config", str(path), "image", "remove", DEFAULT_IMAGE, "--json")
    assert json.loads(removed.stdout) == {"name": DEFAULT_IMAGE, "removed": [current.hash]}
    assert [image.hash for image in list_images(state_dir)] == [old.hash]
    assert "no build" in cli_invoke("--config", str(path), "image", "remove", DEFAULT_IMAGE).stdout

    unknown = cli_invoke("--config", str(path), "image", "remove", DEFAULT_IMAGE, "--hash", "ffffffffffffffff")
    assert unknown.exit_code == 2 and "has no build ffffffffffffffff" in unknown.stderr
    cli_invoke("--config", str(path), "image", "remove", DEFAULT_IMAGE, "--all")
    assert list_images(state_dir) == []
    assert "no images built yet" in cli_invoke("--config", str(path), "image", "list").stdout


def test_cli_refuses_unknown_image_names(write_config, cli_invoke):
    result = cli_invoke("--config", str(write_config()), "image", "build", "images:debian/12")
    assert result.exit_code == 2 and "not an image ws builds" in result.stderr


def test_hooks_are_single_lines(tmp_path):
    """mmdebstrap first stats each hook as a file name and warns about names containing newlines."""
    recipe = recipe_for(config(agent={"install_claude_code": True}), with_kernel=True)
    hooks = [part for part in mmdebstrap_command(recipe, tmp_path) if part.startswith("--customize-hook=")]
    assert len(hooks) == 6 and not [hook for hook in hooks if "\n" in hook]
