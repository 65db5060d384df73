"""The wheel installs the three layers under `streamlet` and ships their type information."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        cwd=build,
        env={"PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (wheel,) = out.glob("streamlet-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_puts_nothing_at_the_top_level_but_streamlet(wheel_names: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"streamlet"}


@pytest.mark.parametrize("layer", ["codec", "actors", "runtime"])
def test_each_layer_installs_under_streamlet_with_py_typed(
    wheel_names: list[str], layer: str
) -> None:
    assert f"streamlet/{layer}/__init__.py" in wheel_names
    assert f"streamlet/{layer}/py.typed" in wheel_names


def test_facade_and_console_script_are_packaged(wheel_names: list[str]) -> None:
    assert "streamlet/__init__.py" in wheel_names
    assert "streamlet/py.typed" in wheel_names
    (entry_points,) = [n for n in wheel_names if n.endswith("entry_points.txt")]
    assert entry_points.endswith(".dist-info/entry_points.txt")
