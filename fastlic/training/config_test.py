"""Recipe files: every shipped recipe loads and names a registered model; ``extends`` layers a variant on its
parent, and a missing parent or a cycle fails with the file's name."""

from pathlib import Path

import pytest

import fastlic
from fastlic.training.config import make_config, read_config_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("recipe", sorted(p.name for p in CONFIGS.glob("*.toml")))
def test_shipped_recipes_load(recipe):
    cfg = make_config(CONFIGS / recipe)
    assert cfg.model in fastlic.list_models()


def test_wide_preset_is_the_clean_preset_with_wide_transforms():
    clean = make_config(CONFIGS / "mlicpp_vr_cpu_clean.toml").to_dict()
    wide = make_config(CONFIGS / "mlicpp_vr_cpu_clean_wide.toml").to_dict()
    assert wide.pop("model_config") == {"transform_channels": 96}
    assert clean.pop("model_config") == {}
    assert wide == clean


def test_extends_overrides_parent_keys(tmp_path):
    (tmp_path / "base.toml").write_text('description = "base"\nsteps = 10\nlr = 1e-3\nlambda = 0.01\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.toml").write_text('description = "child"\nextends = "../base.toml"\nsteps = 20\n')
    assert read_config_file(tmp_path / "sub" / "child.toml") == {"steps": 20, "lr": 1e-3, "lmbda": [0.01]}
    cfg = make_config(tmp_path / "sub" / "child.toml", steps=30)  # the command line still wins
    assert (cfg.steps, cfg.lr) == (30, 1e-3)


def test_extends_errors_name_the_file(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ValueError, match=r"a\.toml: recipes extend each other in a cycle"):
        read_config_file(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ValueError, match=r"c\.toml: extends 'missing\.toml', which is not a file"):
        read_config_file(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text('extends = 3\n')
    with pytest.raises(ValueError, match=r"d\.toml: extends must name one recipe file"):
        read_config_file(tmp_path / "d.toml")
