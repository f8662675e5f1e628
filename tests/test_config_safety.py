"""Configs are data (round 2): files read safely and fast, resolvers refused by the command
line's reader, one-line bounded error messages, ``inputs:`` on a single loss never dropped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

import lossreg
from lossreg import ConfigError
from lossreg.cli.config_file import ConfigFileError, load_spec

ROOT = Path(__file__).resolve().parents[1]


# -- reading files -----------------------------------------------------------------------------
def test_stdin_directories_and_pipes_are_clear_errors(tmp_path):
    with pytest.raises(ConfigFileError, match="standard input is not supported"):
        load_spec("-")
    with pytest.raises(ConfigFileError, match="is a directory, not a config file"):
        load_spec(tmp_path)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigFileError, match="is not a regular file"):
        load_spec(fifo)  # opening it would block forever
    with pytest.raises(ConfigFileError, match="config file not found"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.skipif(
    not Path("/dev/stdin").exists() or Path("/dev/stdin").is_file(),
    reason="no /dev/stdin, or standard input is redirected from a file",
)
def test_dev_stdin_is_not_a_config_file():
    with pytest.raises(ConfigFileError, match="is not a regular file"):
        load_spec("/dev/stdin")


def test_non_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("loss: {name: l1}\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigFileError, match=r"line 2: not UTF-8 text \(byte 0xe9\)"):
        load_spec(path)


def test_deep_nesting_is_refused_without_the_pure_python_scanner(tmp_path, monkeypatch):
    # 64 KB of `[` took 17-24 s in PyYAML's pure-Python scanner; libyaml refuses it at once
    def slow_path(*args, **kwargs):
        raise AssertionError("the pure-Python YAML scanner ran")

    monkeypatch.setattr(yaml.scanner.Scanner, "fetch_more_tokens", slow_path)
    for text in ("[" * 65536, "a: " + "[" * 100 + "1" + "]" * 100 + "\n"):
        path = tmp_path / "nested.yaml"
        path.write_text(text)
        with pytest.raises(ConfigFileError, match="nest"):
            load_spec(path)


def test_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("loss: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigFileError, match="YAML tag '!!python/object/apply:os.system'"):
        load_spec(path)


def test_alias_bombs_stop_at_omegaconf_s_limit(tmp_path):
    # the 323-byte "billion laughs": OmegaConf 2.3 expands it forever, 2.4 counts nodes
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigFileError, match="OMEGACONF_MAX_YAML_EXPANDED_NODES"):
        load_spec(path)


def test_a_big_honest_config_names_the_setting_that_raises_the_limit(tmp_path, monkeypatch):
    # a 21k-entry class-weight list meets the 10,000-node default; scaled down tenfold here
    # (parsing 21k nodes takes OmegaConf about 10 s) by lowering the limit the same way
    path = tmp_path / "weights.yaml"
    weights = ", ".join(["1.0"] * 2100)
    path.write_text(f"loss:\n  name: cross_entropy\n  weight: [{weights}]\n")
    monkeypatch.setenv("OMEGACONF_MAX_YAML_EXPANDED_NODES", "1000")
    with pytest.raises(ConfigFileError) as caught:
        load_spec(path)
    assert "OMEGACONF_MAX_YAML_EXPANDED_NODES raises it" in str(caught.value)
    assert "OMEGACONF_MAX_YAML_EXPANDED_NODES=100000" in caught.value.hint
    monkeypatch.setenv("OMEGACONF_MAX_YAML_EXPANDED_NODES", "10000")
    assert len(load_spec(path)["weight"]) == 2100


def test_omegaconf_is_at_least_2_4():
    import importlib.metadata as md

    major, minor = (int(p) for p in md.version("omegaconf").split(".")[:2])
    assert (major, minor) >= (2, 4)
    assert '"omegaconf>=2.4"' in (ROOT / "pyproject.toml").read_text()


# -- resolvers ---------------------------------------------------------------------------------
def test_resolvers_are_refused_naming_them_and_never_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSREG_TEST_TOKEN", "s3cr3t-value")
    path = tmp_path / "token.yaml"
    path.write_text("loss:\n  name: '${oc.env:LOSSREG_TEST_TOKEN}'\n")
    with pytest.raises(ConfigFileError) as caught:
        load_spec(path)
    assert "resolver 'oc.env'" in str(caught.value) and "loss.name" in str(caught.value)
    assert "s3cr3t" not in str(caught.value) + caught.value.hint
    assert load_spec(path, allow_resolvers=True) == {"name": "s3cr3t-value"}


def test_host_registered_resolvers_are_refused_too(tmp_path):
    calls = []
    register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
    register("lossreg_test_calls", lambda: calls.append(1) or 1.0)
    try:
        path = tmp_path / "r.yaml"
        path.write_text("loss:\n  name: l1\n  reduction: mean\nw: ${lossreg_test_calls:}\n")
        with pytest.raises(ConfigFileError, match="resolver 'lossreg_test_calls'"):
            load_spec(path)
        assert calls == []
    finally:
        OmegaConf.clear_resolver("lossreg_test_calls")


def test_node_interpolations_still_resolve():
    spec = load_spec(ROOT / "configs" / "weights_interpolated.yaml")
    assert "${" not in str(spec)


# -- error messages ----------------------------------------------------------------------------
def test_a_newline_in_a_key_never_splits_a_message_line():
    spec = {"expr": "a + l1", "terms": {"a": {"name": "mse", "x\nERROR: forged": 1}}}
    with pytest.raises(ConfigError) as caught:
        lossreg.build(spec)
    (line,) = str(caught.value).splitlines()
    assert "x\\nERROR: forged" in line


def test_a_huge_name_is_not_echoed_whole():
    with pytest.raises(lossreg.UnknownLossError) as caught:
        lossreg.build({"name": "x" * 1_000_000})
    assert len(str(caught.value)) < 400
    with pytest.raises(ConfigError) as caught:
        lossreg.build({"expr": "a", "terms": {"a": {"name": "y" * 1_000_000}}})
    assert len(str(caught.value)) < 800


# -- inputs: on a single loss ------------------------------------------------------------------
def test_inputs_on_a_single_loss_route_the_tensors():
    pred, gt = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    module = lossreg.build({"name": "mse", "inputs": {"input": "pred", "target": "gt"}})
    assert torch.equal(module(pred=pred, gt=gt), torch.nn.functional.mse_loss(pred, gt))
    rebuilt = lossreg.build(lossreg.to_config(module))
    assert torch.equal(rebuilt(pred=pred, gt=gt), module(pred=pred, gt=gt))
    with pytest.raises(lossreg.LossregError, match="'pred'"):
        module(gt=gt)


def test_bad_inputs_on_a_single_loss_are_a_clear_error():
    with pytest.raises(ConfigError, match="mse has no tensor argument 'pred'"):
        lossreg.build({"name": "mse", "inputs": {"pred": "x"}})
    with pytest.raises(ConfigError, match="must map argument names"):
        lossreg.build({"name": "mse", "inputs": ["x"]})


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("FIFOs and /dev/stdin are POSIX", allow_module_level=True)
