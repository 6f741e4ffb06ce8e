"""Every experiments/*.flags parses and validates into a Config."""

import glob
import os

import pytest

from jaxgan import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.flags")))


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_flagfile_validates(path, monkeypatch):
  from jaxgan import main
  monkeypatch.chdir(ROOT)  # nested --flagfile paths are relative to the repository root
  main.FLAGS.unparse_flags()
  main.FLAGS(["jaxgan", f"--flagfile={path}"])
  try:
    config = config_lib.from_flags(main.FLAGS).validate()
  finally:
    main.FLAGS.unparse_flags()
  assert config.num_steps > 0 or config.num_epochs > 0
  with open(path) as f:
    assert f.readline().startswith("#"), "each flagfile starts with a comment naming its source"
