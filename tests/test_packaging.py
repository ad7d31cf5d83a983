"""Packaging facts that must agree with each other: version, uWSGI pin, metadata, licence."""

from __future__ import annotations

import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

import uwsgi_gluster
from support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import uwsgi_build  # scripts/ is not a package


@pytest.fixture(scope="module")
def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    assert cfg.read(ROOT / "setup.cfg")
    return cfg


def classifiers(cfg: configparser.ConfigParser) -> list:
    return [line.strip() for line in cfg["metadata"]["classifiers"].splitlines() if line.strip()]


def test_version_is_written_once_in_the_package():
    init = Path(uwsgi_gluster.__file__).read_text()
    assert re.findall(r"^__version__ = \"([^\"]+)\"$", init, re.MULTILINE) == [uwsgi_gluster.__version__]


def test_setup_cfg_reads_the_version_from_the_package(setup_cfg):
    assert setup_cfg["metadata"]["version"] == "attr: uwsgi_gluster.__version__"
    assert importlib.metadata.version("uwsgi-gluster") == uwsgi_gluster.__version__


def test_changelog_newest_release_is_the_version():
    releases = re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", (ROOT / "CHANGELOG.md").read_text(),
                          re.MULTILINE)
    assert releases and releases[0] == uwsgi_gluster.__version__


def test_uwsgi_build_takes_its_version_from_the_pyuwsgi_pin(tmp_path):
    """./uwsgi used to be built from a second, separate copy of the version."""
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options]\ninstall_requires =\n    pyuwsgi==2.0.99\n    gfapi==1.2\n")
    assert uwsgi_build.pinned_uwsgi_version(cfg) == "2.0.99"
    cfg.write_text("[options]\ninstall_requires =\n    pyuwsgi>=2\n")
    with pytest.raises(uwsgi_build.BuildError, match="pin pyuwsgi exactly once"):
        uwsgi_build.pinned_uwsgi_version(cfg)


def test_uwsgi_version_agrees_everywhere(setup_cfg):
    """One pin (setup.cfg), used by the builder, installed in the venv, quoted by the README."""
    pins = re.findall(r"^\s*pyuwsgi==(\S+)$", setup_cfg["options"]["install_requires"], re.MULTILINE)
    assert pins == [uwsgi_build.UWSGI_VERSION]
    assert importlib.metadata.version("pyuwsgi") == uwsgi_build.UWSGI_VERSION
    readme = (ROOT / "README.rst").read_text()
    quoted = set(re.findall(r"pinned version \((\S+?)\)|uwsgi==(\S+?)``", readme))
    assert {v for pair in quoted for v in pair if v} == {uwsgi_build.UWSGI_VERSION}


def test_python_classifiers_match_python_requires(setup_cfg):
    low = re.fullmatch(r">=3\.(\d+)", setup_cfg["options"]["python_requires"].strip())
    assert low
    minors = sorted(int(m) for c in classifiers(setup_cfg)
                    for m in re.findall(r"^Programming Language :: Python :: 3\.(\d+)$", c))
    assert minors and minors[0] == int(low.group(1))
    assert minors == list(range(minors[0], minors[-1] + 1))
    assert sys.version_info[:2] in [(3, m) for m in minors]  # the Python running the tests is claimed


def test_license_file_classifier_and_metadata_agree(setup_cfg):
    assert setup_cfg["metadata"]["license"] == "MIT"
    assert "License :: OSI Approved :: MIT License" in classifiers(setup_cfg)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert setup_cfg["metadata"]["license_files"].split() == ["LICENSE"]
