"""Config loading: strict schema, key paths in errors, resolved paths and targets."""

from __future__ import annotations

import pytest

from dnadesign.core.errors import ConfigError
from dnadesign.core.ids import sha256_file
from dnadesign.densegen.config import SCHEMA_VERSION, load_config


def test_demo_sites_loads_with_resolved_targets(demo_workspace):
    path = demo_workspace("demo_sites")
    cfg = load_config(path)
    assert cfg.path == path.resolve()
    assert cfg.root == path.parent.resolve()
    assert cfg.sha256 == sha256_file(path)
    assert cfg.run_id == "demo_sites"
    assert cfg.outputs_dir == cfg.root / "outputs"
    assert cfg.usr_target() == (cfg.root / "outputs" / "usr_datasets", "densegen/demo_sites")
    assert cfg.parquet_target() == cfg.root / "outputs" / "tables" / "records.parquet"
    assert cfg.resolve("inputs/regulondb_sites.csv").is_file()
    assert cfg.forbid_kmers() == ("TTGACA", "TATAAT")


def test_defaults_for_usr_target_and_run_root(minimal, tmp_path):
    def edit(raw):
        raw["output"] = {"targets": ["usr"]}
        (tmp_path / "ws").mkdir()
        raw["run"]["root"] = "ws"

    cfg = load_config(minimal(edit))
    assert cfg.root == (tmp_path / "ws").resolve()
    assert cfg.usr_target() == (cfg.root / "outputs" / "usr_datasets", "densegen/t")
    assert cfg.parquet_target() is None
    # inputs stay relative to the config file, not to run.root
    assert cfg.resolve("sites.csv") == (tmp_path / "sites.csv").resolve()


def test_solver_options_follow_config(demo_workspace):
    cfg = load_config(demo_workspace("demo_sites"))
    o = cfg.solver_options(workers=3)
    assert (o.mode, o.time_limit_s, o.run_time_limit_s, o.workers, o.seed) == ("diverse", 2.0, 8.0, 3, 7)
    assert cfg.solver_options(seed=99, workers=1).seed == 99
    assert o.stall_time_s is None  # default: the whole time limit


def test_stall_time_reaches_the_solver(demo_workspace):
    import yaml

    path = demo_workspace("demo_sites")
    doc = yaml.safe_load(path.read_text())
    doc["solver"]["stall_time_s"] = 1.5
    path.write_text(yaml.safe_dump(doc))
    assert load_config(path).solver_options().stall_time_s == 1.5


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda r: r.update(bogus=1), "unknown key `bogus`"),
        (lambda r: r["generation"]["sampling"].update(libary_size=3), "unknown key `generation.sampling.libary_size`"),
        (lambda r: r["inputs"][0].update(colour="red"), "unknown key `inputs[0].colour`"),
        (lambda r: r["generation"]["plans"][0].update(sequences=0), "`generation.plans[0].sequences`"),
        (lambda r: r.update(schema_version=SCHEMA_VERSION + 1), "schema_version"),
        (lambda r: r["inputs"][0].update(type="binding_site"), "`inputs[0].type`: unknown type 'binding_site'"),
        (lambda r: r["generation"]["plans"][0].update(include_inputs=["nope"]), "`generation.plans[0].include_inputs`: unknown input 'nope'"),
        (lambda r: r.update(motif_sets={"m": {"a": "TTGXCA"}}), "is not DNA"),
        (lambda r: r["run"].update(id="Has Space"), "`run.id`"),
        (lambda r: r["generation"].pop("sequence_length"), "missing required key `generation.sequence_length`"),
        (lambda r: r["output"] if False else r.update(output={"targets": []}), "`output.targets`"),
        (lambda r: r["generation"]["plans"].append(dict(r["generation"]["plans"][0])), "plan names must be unique"),
    ],
)
def test_bad_configs_name_the_key_path(minimal, edit, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(minimal(edit))
    assert expected in exc.value.render()


def test_unknown_key_hint_lists_allowed_keys(minimal):
    with pytest.raises(ConfigError) as exc:
        load_config(minimal(lambda r: r["generation"]["sampling"].update(libary_size=3)))
    assert "library_size" in exc.value.hint


def test_duplicate_yaml_key_fails_with_line(write_config, sites_csv):
    text = (
        "schema_version: 1\nrun: {id: t}\ninputs:\n  - {name: s, type: binding_sites, path: sites.csv}\n"
        "generation:\n  sequence_length: 60\n  sequence_length: 70\n"
        "  plans: [{name: p, sequences: 1, include_inputs: [s]}]\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(text))
    assert "duplicate key 'sequence_length' at line 7" in exc.value.render()


def test_missing_config_file_and_missing_schema_version(tmp_path, write_config):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="schema_version"):
        load_config(write_config("run: {id: t}\n"))


def test_invalid_yaml_reports_position(write_config):
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(write_config("schema_version: 1\nrun:\n  id: t\n bad: [\n"))


def test_default_config_path_uses_env_then_cwd(minimal, monkeypatch, tmp_path):
    monkeypatch.delenv("DENSEGEN_CONFIG", raising=False)
    monkeypatch.delenv("DENSEGEN_CONFIG_PATH", raising=False)
    path = minimal()
    monkeypatch.chdir(tmp_path)
    assert load_config().path == path.resolve()
    other = minimal(name="other.yaml")
    monkeypatch.setenv("DENSEGEN_CONFIG_PATH", str(other))
    assert load_config().path == other.resolve()
    third = minimal(name="third.yaml")
    monkeypatch.setenv("DENSEGEN_CONFIG", str(third))  # the primary name wins
    assert load_config().path == third.resolve()


def test_matrix_and_group_cross_references(minimal):
    def unknown_set(r):
        r["generation"]["plans"][0]["fixed_elements"] = {"fixed_element_matrix": {
            "upstream_from_set": "m35", "downstream_from_set": "m10", "spacer": [16, 18]}}

    with pytest.raises(ConfigError, match="unknown motif set 'm35'"):
        load_config(minimal(unknown_set))

    def shared_member(r):
        r["generation"]["plans"][0]["regulator_constraints"] = {"groups": [
            {"name": "a", "members": ["LexA"]}, {"name": "b", "members": ["LexA", "Fur"]}]}

    with pytest.raises(ConfigError, match="regulator 'LexA' is in groups 'a' and 'b'"):
        load_config(minimal(shared_member))


def test_run_root_must_exist(minimal):
    with pytest.raises(ConfigError, match="run.root"):
        load_config(minimal(lambda r: r["run"].update(root="missing_dir")))


def test_kmer_motif_set_references_expand(minimal):
    def edit(r):
        r["motif_sets"] = {"m35": {"a": "TTGACA", "b": "ttgaca", "c": "TTTACA"}}
        r["generation"]["sequence_constraints"] = {"forbid_kmers": ["gggggg", {"motif_sets": ["m35"], "kmers": ["CCCC"]}]}

    cfg = load_config(minimal(edit))
    assert cfg.forbid_kmers() == ("GGGGGG", "CCCC", "TTGACA", "TTTACA")


def test_hints_for_renamed_and_old_format_keys(minimal, write_config):
    def edit(r):
        r["generation"]["plans"][0]["fixed_elements"] = {"promoter_constraints": [
            {"upstream": "TTGACA", "downstream": "TATAAT", "spacer_length": [16, 18]}]}
    with pytest.raises(ConfigError) as exc:
        load_config(minimal(edit))
    assert "unknown key `generation.plans[0].fixed_elements.promoter_constraints[0].spacer_length` (did you mean `spacer`?)" in exc.value.render()
    with pytest.raises(ConfigError, match="not needed: the solver is always CP-SAT"):
        load_config(minimal(lambda r: r.update(solver={"backend": "CBC"})))
    with pytest.raises(ConfigError, match="previous DenseGen"):
        load_config(write_config({"densegen": {"schema_version": "2.9"}}, name="old.yaml"))
