"""Without the medical extra, a NIfTI, DICOM or HDF5 input is one line naming what to install."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from pipeline.cli import main


def _input(tmp_path, module):
    if module == "nibabel":
        path = tmp_path / "scan.nii.gz"
        path.write_bytes(b"\0" * 400)
    elif module == "h5py":
        path = tmp_path / "vol.h5"
        path.write_bytes(b"\0" * 400)
    else:
        path = tmp_path / "series"
        path.mkdir()
        (path / "a.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 100)
    return path


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("nibabel", r"NIfTI needs nibabel: pip install 'segpipe\[medical\]'"),
        ("pydicom", r"DICOM needs pydicom: pip install 'segpipe\[medical\]'"),
        ("h5py", r"HDF5 input needs h5py: pip install 'segpipe\[medical\]'"),
    ],
)
def test_missing_module_is_one_line(tmp_path, monkeypatch, capsys, module, message):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when not installed
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(_input(tmp_path, module))},
                "steps": {"mask": {"op": "threshold", "value": 1}},
                "output": {"path": str(tmp_path / "out"), "labels": "mask"},
            }
        )  # fmt: skip
    )
    assert main(["run", str(config)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out").exists()
