"""The ``lossreg`` command line: each command once through the installed console script in a
subprocess (what a user runs), the error paths in-process through ``lossreg.cli.main``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import lossreg
from lossreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
# needs acme-losses, so it lives beside that example; see test_scaffold.py
COMPANY = ROOT / "docs" / "examples" / "acme_losses" / "company_plugin.yaml"
BUILTIN_CONFIGS = CONFIGS  # `lossreg check configs/*.yaml` passes on a fresh clone
ENV = {**os.environ, "COLUMNS": "200"}


def lossreg_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lossreg")
    assert exe, "the `lossreg` console script is not installed (pip install -e .)"
    return subprocess.run(
        [exe, *args], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Any]]]:
    """Every console-script run of this module, started at once on a small thread pool
    (each spends seconds importing torch; side by side they take half the wall time)."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "evil.yaml").write_text(
        f"loss: !!python/object/apply:os.system ['touch {tmp / 'pwned'}']\n"
    )
    configs = BUILTIN_CONFIGS + ([COMPANY] if "acme_charbonnier" in lossreg.available() else [])
    commands: dict[str, tuple[list[str], Path]] = {
        "list": (["list", "--tag", "segmentation"], ROOT),
        "show": (["show", "focal"], ROOT),
        "check": (["check", *(str(c.relative_to(ROOT)) for c in configs)], ROOT),
        "evil": (["check", str(tmp / "evil.yaml")], tmp),
        "eval": (["eval", "configs/detection.yaml", "--seed", "3"], ROOT),
        "schema": (["schema"], ROOT),
        "plot": (["plot", "focal", "--output", str(tmp / "focal.png")], tmp),
        "demo": (["demo", "--steps", "3", "--output", str(tmp / "curves.png")], tmp),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures: dict[str, Future[Any]] = {
            key: pool.submit(lossreg_cli, *args, cwd=cwd) for key, (args, cwd) in commands.items()
        }
        futures["plugins"] = pool.submit(
            lossreg_cli, "plugins", env={"LOSSREG_DISABLE_PLUGINS": "lovasz"}
        )
        code = (
            "import sys, lossreg; lossreg.build('0.5*dice + bce'); print(sorted(m for m in "
            "('typer', 'rich', 'matplotlib', 'click') if m in sys.modules))"
        )
        futures["import"] = pool.submit(
            subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, env=ENV
        )
        futures["tmp"] = pool.submit(lambda: tmp)
        futures["configs"] = pool.submit(lambda: configs)
        yield futures


def rows(table: str) -> dict[str, list[str]]:
    """First cell -> all cells of each row of a rich table."""
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 1 and cells[0]:
            out[cells[0]] = cells
    return out


# -- through the console script ------------------------------------------------------------
@pytest.mark.slow
def test_list_filters_by_tag(runs: dict[str, Future[Any]]) -> None:
    res = runs["list"].result()
    assert res.returncode == 0, res.stderr
    table = rows(res.stdout)
    assert set(lossreg.available(tag="segmentation")) <= set(table)
    assert "l1" not in table and "focal" not in table  # other tags are filtered out
    assert table["iou"][1] == ", ".join(lossreg.describe("iou").aliases)


@pytest.mark.slow
def test_show_prints_params_doc_and_an_example_that_builds(runs: dict[str, Future[Any]]) -> None:
    res = runs["show"].result()
    assert res.returncode == 0, res.stderr
    params = rows(res.stdout)
    assert params["gamma"][1:4] == ["float", "2.0", ">= 0"]
    assert "Lin et al. 2017" in res.stdout  # the docstring (formula and paper)
    example = res.stdout.split("example config\n", 1)[1]
    spec = yaml.safe_load(example)["loss"]
    assert lossreg.to_config(lossreg.build(spec)) == lossreg.to_config(lossreg.build("focal"))


@pytest.mark.slow
def test_check_every_config_file(runs: dict[str, Future[Any]]) -> None:
    configs = runs["configs"].result()
    res = runs["check"].result()
    assert res.returncode == 0, res.stderr
    for config in configs:
        assert f"ok: {config.relative_to(ROOT)} is a valid lossreg config" in res.stdout
    assert "composite cls + 2*box" in res.stdout  # the built tree
    assert "box inputs {'input': 'pred_boxes', 'target': 'boxes'}: giou(" in res.stdout


@pytest.mark.slow
def test_check_refuses_python_tags_and_runs_nothing(runs: dict[str, Future[Any]]) -> None:
    marker = runs["tmp"].result() / "pwned"
    res = runs["evil"].result()
    assert res.returncode == 1
    assert res.stdout == ""
    assert "error:" in res.stderr and "'!!python/object/apply:os.system' is refused" in res.stderr
    assert "Traceback" not in res.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_eval_routes_tensors_and_prints_every_term(runs: dict[str, Future[Any]]) -> None:
    res = runs["eval"].result()
    assert res.returncode == 0, res.stderr
    table = rows(res.stdout)
    assert table["logits"][1] == "(4, 3) float32"  # per-box class logits next to boxes
    assert table["labels"][1] == "(4,) int64"
    assert table["pred_boxes"][1] == table["boxes"][1] == "(4, 4) float32"
    cls, box, total = (float(table[k][1]) for k in ("cls", "box", "total"))
    assert total == pytest.approx(cls + 2 * box, rel=1e-5)  # the expression cls + 2*box


@pytest.mark.slow
def test_schema_is_draft_2020_12_and_validates_the_example_configs(
    runs: dict[str, Future[Any]],
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    res = runs["schema"].result()
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for config in BUILTIN_CONFIGS:  # raw YAML, interpolations unresolved, as an editor sees it
        errors = list(validator.iter_errors(yaml.safe_load(config.read_text())))
        assert not errors, f"{config.name}: {errors[0].message}"


@pytest.mark.slow
def test_plot_focal_writes_a_png(runs: dict[str, Future[Any]]) -> None:
    out = runs["tmp"].result() / "focal.png"
    res = runs["plot"].result()
    assert res.returncode == 0, res.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.slow
def test_plugins_lists_every_builtin_entry_point(runs: dict[str, Future[Any]]) -> None:
    res = runs["plugins"].result()  # run with LOSSREG_DISABLE_PLUGINS=lovasz
    assert res.returncode == 0, res.stderr
    table = rows(res.stdout)
    for plugin in ("regression", "classification", "torch_nn", "segmentation", "detection"):
        assert table[plugin][1:3] == ["lossreg", lossreg.__version__]
        assert table[plugin][3] == f"lossreg_builtin.manifest:{plugin}"
        assert table[plugin][4] == "loaded"
    assert table["lovasz"][4] == "disabled" and table["lovasz"][5] == ""
    assert "dice" in table["segmentation"][5]


@pytest.mark.slow
def test_demo_runs_with_few_steps(runs: dict[str, Future[Any]]) -> None:
    out = runs["tmp"].result() / "curves.png"
    res = runs["demo"].result()
    assert res.returncode == 0, res.stderr
    table = rows(res.stdout)
    for objective in ("0.5*dice + bce_with_logits", "bce_with_logits"):
        dice, iou = float(table[objective][1]), float(table[objective][2])
        assert 0.0 <= iou <= dice <= 1.0  # IoU = dice / (2 - dice) <= dice
    assert "3/3" in res.stdout  # the progress bar ran to the end
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_import_lossreg_stays_free_of_cli_libraries(runs: dict[str, Future[Any]]) -> None:
    res = runs["import"].result()
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# -- error paths, in-process ---------------------------------------------------------------
def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "loss: {name: huber, dleta: 2}\n",
            "dleta: [huber] unknown parameter 'dleta'; did you mean 'delta'?",
        ),
        ("loss: {name: dise}\n", "unknown loss 'dise'; did you mean 'dice'"),
        ("loss: {expr: '0.5*l1 + mse('}\n", "at column 13"),
        ("loss: {expr: '${w.x}*l1'}\n", "cannot resolve interpolation"),
        ("loss: {name: focal, gamma: -1}\n", "gamma: [focal]"),
        ("loss: {name: l1\n", "not valid YAML"),
        ("loss: {name: l1, _target_: os.system}\n", "'_target_' is not supported"),
        ("x: !!python/name:os.system ''\n", "'!!python/name:os.system' is refused"),
        ("loss: !custom {name: l1}\n", "YAML tag '!custom' is refused"),
    ],
)
def test_check_errors_are_one_line_with_a_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    code, out, err = run_main(capsys, "check", write(tmp_path, text))
    assert code == 1
    assert out == ""
    assert err.startswith("error: ") and message in err
    assert "\nhint: " in err or "^" in err  # a hint, or the caret under the column
    assert "Traceback" not in err


def test_all_problems_of_a_config_are_reported_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write(
        tmp_path,
        "loss:\n  expr: a + b\n  terms:\n    a: {name: dice, smoth: 1}\n    b: {name: focal, gamma: x}\n",
    )
    code, _, err = run_main(capsys, "check", config)
    assert code == 1
    assert "2 problems" in err
    assert "terms.a.smoth: [dice] unknown parameter 'smoth'; did you mean 'smooth'?" in err
    assert "terms.b.gamma: [focal]" in err


def test_missing_file_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", "no/such.yaml")
    assert (code, err.splitlines()[0]) == (1, "error: config file not found: no/such.yaml")
    code, _, err = run_main(capsys, "show", "CrossEntropyLos")
    assert code == 1 and "did you mean 'cross_entropy'" in err
    code, _, err = run_main(capsys, "list", "--tag", "nope")
    assert code == 1 and "no loss has the tag 'nope'" in err and "segmentation" in err
    code, _, err = run_main(capsys, "plot", "focl", "--output", "x.png")
    assert code == 1 and "did you mean 'focal'" in err


def test_check_reports_each_bad_file_and_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: {name: l1, beta: 1}\n")
    code, out, err = run_main(capsys, "check", str(ROOT / "configs" / "focal.yaml"), str(bad))
    assert code == 1
    assert "focal.yaml is a valid lossreg config" in out
    assert f"error: {bad}: invalid config: beta: [l1] unknown parameter 'beta'" in err
    assert "1 of 2 configs are invalid" in err


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(lossreg.UnknownLossError, match="unknown loss 'nope'"):
        main(["show", "nope", "--debug"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check")
    assert code == 2 and "Missing argument" in err
    code, _, err = run_main(capsys, "eval", str(ROOT / "configs" / "focal.yaml"), "--shape", "4,x")
    assert code == 1 and "--shape must be integers" in err


@pytest.mark.parametrize("config", BUILTIN_CONFIGS, ids=lambda p: p.name)
def test_eval_makes_inputs_for_every_example_config(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, out, err = run_main(capsys, "eval", str(config))
    assert code == 0, err
    total = float(rows(out)["total"][1])
    assert total == total and abs(total) < 1e6  # finite


def test_eval_class_count_follows_the_class_weights() -> None:
    from lossreg.cli.synthetic import synth_call

    module = lossreg.build({"name": "cross_entropy", "weight": [1.0, 2.0, 3.0, 4.0, 5.0]})
    value, tensors, keywords = synth_call(module, seed=1)
    assert tensors["input"].shape == (4, 5, 16, 16) and tensors["target"].shape == (4, 16, 16)
    assert not keywords
    expected = torch.nn.functional.cross_entropy(
        tensors["input"], tensors["target"], weight=torch.arange(1.0, 6.0)
    )
    torch.testing.assert_close(value, expected)


def test_schema_rejects_bad_configs_that_build_rejects_too(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from lossreg.cli.json_schema import loss_spec_schema

    validator = jsonschema.Draft202012Validator(loss_spec_schema())
    good = [
        "cross_entropy",
        "0.5*dice + bce",
        {"name": "CrossEntropyLoss", "label_smoothing": 0.1},
        {"loss": {"name": "focal", "gamma": 3.0, "alpha": None}},
        {"expr": "a + bce", "terms": {"a": {"name": "dice", "mode": "multiclass"}}},
        {"expr": "a", "terms": {"a": {"name": "focal", "gamma": "${g}"}}},  # interpolation
    ]
    bad = [
        {"name": "nope"},
        {"name": "huber", "dleta": 1.0},
        {"name": "focal", "gamma": -1},
        {"name": "focal", "gamma": "steep"},
        {"name": "dice", "mode": "binarry"},
        {"name": "cross_entropy", "weight": ["a"]},
        {"expr": "a", "terms": {"a": {"name": "l1", "beta": 1}}},
        {"expr": "l1", "extra": 1},
        {"loss": {"name": "l1", "reduction": "avg"}},
    ]
    for spec in good:
        assert not list(validator.iter_errors(spec)), spec
    for spec in bad:
        assert list(validator.iter_errors(spec)), spec
        with pytest.raises(lossreg.LossregError):
            lossreg.build(spec)


# -- round 2: output files, literal printing, clear errors -----------------------------------
@pytest.fixture
def scratch() -> Iterator[None]:
    """Registrations made by the test are withdrawn after it (other tests list every loss)."""
    from lossreg._registry import registry

    registry.ensure_discovered()
    state = registry.snapshot()
    yield
    registry.restore(state)


def test_check_configs_glob_needs_no_plugin() -> None:
    from lossreg.cli.config_file import load_spec

    for config in CONFIGS:
        lossreg.build(load_spec(config))  # no plugin needed: no ConfigError


@pytest.mark.parametrize(
    "args",
    [["schema"], ["plot", "l1"], ["demo", "--steps", "1"]],
    ids=["schema", "plot", "demo"],
)
def test_no_command_overwrites_a_file_or_follows_a_symlink(capsys, tmp_path, monkeypatch, args):
    import lossreg.cli.demo as demo_module

    monkeypatch.setattr(demo_module, "run_demo", _fail_if_called)  # refused before any work
    existing = tmp_path / "out.png"
    existing.write_text("mine")
    code, _, err = run_main(capsys, *args, "-o", str(existing))
    assert code == 1 and "already exists; nothing was written" in err and "--force" in err
    assert existing.read_text() == "mine"
    target = tmp_path / "target.png"
    (tmp_path / "link.png").symlink_to(target)
    code, _, err = run_main(capsys, *args, "-o", str(tmp_path / "link.png"))
    assert code == 1 and "is a symbolic link" in err and not target.exists()


def _fail_if_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the command started its work")


def test_force_overwrites_and_the_written_path_is_reported_exactly(capsys, tmp_path) -> None:
    out = tmp_path / "a [" / "bold].json"  # the path holds `[/bold]`: Rich markup
    out.parent.mkdir()
    out.write_text("old")
    code, _, err = run_main(capsys, "schema", "-o", str(out), "--force")
    assert code == 0, err
    assert err == f"wrote {out}\n"
    assert json.loads(out.read_text())["$schema"].startswith("https://json-schema.org")


def test_plot_output_must_be_a_png(capsys, tmp_path) -> None:
    code, _, err = run_main(capsys, "plot", "l1", "-o", str(tmp_path / "notes.txt"))
    assert code == 1 and "is not a .png file" in err and "Traceback" not in err


def test_without_matplotlib_demo_says_so_before_training(capsys, monkeypatch) -> None:
    import importlib.util

    import lossreg.cli.demo as demo_module

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    monkeypatch.setattr(demo_module, "run_demo", _fail_if_called)
    for args in (["demo", "--steps", "1"], ["plot", "l1"]):
        code, _, err = run_main(capsys, *args)
        assert code == 1 and "needs matplotlib" in err and "lossreg[cli]" in err


@pytest.mark.slow
def test_without_the_cli_extra_one_line_says_which_extra() -> None:
    code = "import sys; sys.modules['typer'] = None\nfrom lossreg.cli import main"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "lossreg: the command line needs the `cli` extra (typer is not installed): "
        "pip install 'lossreg[cli]'"
    ]


def test_markup_and_control_characters_are_printed_literally(scratch, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    lossreg.register(
        "t_loud",
        lambda input, target: input.sum(),
        summary="[bold red]loud[/] \x1b[31mred\x1b[0m",
        tags=("t_loud_tag",),
        override=True,
    )
    code, out, err = run_main(capsys, "list", "--tag", "t_loud_tag")
    assert code == 0, err
    assert "\x1b" not in out and "[bold red]loud[/]" in out and "\\x1b[31mred" in out
    code, out, err = run_main(capsys, "show", "t_loud")
    assert code == 0 and "\x1b" not in out and "[bold red]loud[/]" in out


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda tmp: "-", "standard input is not supported"),
        (lambda tmp: str(tmp), "is a directory"),
        (lambda tmp: (os.mkfifo(tmp / "p.yaml"), str(tmp / "p.yaml"))[1], "not a regular file"),
    ],
    ids=["dash", "directory", "fifo"],
)
def test_check_of_what_is_not_a_file(capsys, tmp_path, make, message) -> None:
    code, _, err = run_main(capsys, "check", make(tmp_path))
    assert code == 1 and message in err


def test_a_bad_file_does_not_stop_a_multi_file_check(capsys, tmp_path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("loss: {name: l1}  # caf\xe9\n".encode("latin-1"))
    code, out, err = run_main(capsys, "check", str(latin), str(ROOT / "configs" / "focal.yaml"))
    assert code == 1
    assert "not UTF-8 text" in err and "focal.yaml is a valid lossreg config" in out


def test_check_refuses_resolvers_unless_allowed(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LOSSREG_TEST_SECRET", "hunter2")
    config = write(tmp_path, "loss: {name: '${oc.env:LOSSREG_TEST_SECRET}'}\n")
    code, _, err = run_main(capsys, "check", config)
    assert code == 1 and "resolver 'oc.env'" in err and "hunter2" not in err
    assert "--allow-resolvers" in err
    code, _, err = run_main(capsys, "check", config, "--allow-resolvers")
    assert code == 1 and "unknown loss 'hunter2'" in err  # resolved: the user asked for it


def test_eval_seed_and_shape_limits(capsys) -> None:
    focal = str(ROOT / "configs" / "focal.yaml")
    code, _, err = run_main(capsys, "eval", focal, "--seed", str(2**70))
    assert code == 2 and "--seed" in err and "Traceback" not in err
    code, _, err = run_main(capsys, "eval", focal, "--shape", "100000,100000,100")
    assert code == 1 and "at most" in err and "elements" in err


def test_schema_survives_names_that_title_case_alike_and_broken_entries(scratch) -> None:
    from lossreg.cli.json_schema import loss_spec_schema

    lossreg.register("t_ab", lambda input, target: input.sum(), override=True)
    lossreg.register("tAb", lambda input, target: input.sum(), override=True)
    lossreg.register("t_orphan", {"name": "t_missing_base"}, override=True)  # base disabled
    schema = loss_spec_schema()
    names = json.dumps(schema)
    assert '"t_ab"' in names and '"tAb"' in names and "t_orphan" not in names
