"""Comment-keeping config rewrites: `dense config migrate` (incumbent schema 2.x -> here) and
`dense workspace init` (copies a config with every comment).

The incumbent configs are written here from the reference description (../shared/reference/
densegen.md, section 3): `demo_tfbs_baseline` (binding sites, two plans, one with a sigma70
promoter, iterative_subsample) and a sigma-panel style config (PWM artifacts, background pool
with FIMO exclusion, fixed_element_matrix, allowlist, plots with video). Converted configs are
checked with the real `dense validate-config` (schema, inputs, pools and preflight).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from dnadesign.densegen.config_migrate import PLOT_IDS, migrate_config
from tests.conftest import REPO, run_cli

SITES = REPO / "workspaces" / "demo_sites" / "inputs" / "regulondb_sites.csv"

BASELINE = """\
# demo_tfbs_baseline: curated TFBS packed into 100 bp arrays (DenseGen schema 2.9).
# Two plans of 50; the second keeps a sigma70 promoter.
densegen:   # everything DenseGen reads lives under this key
  schema_version: "2.9"
  run:
    id: demo_tfbs_baseline
    root: "."          # workspace root

  inputs:
    # curated sites (RegulonDB subset)
    - name: basic_sites
      type: binding_sites
      path: inputs/sites.csv     # columns tf,tfbs
      format: csv
      columns: {regulator: tf, sequence: tfbs, source: origin}

  motif_sets:
    sigma70_m35: {cons: TTGACA}   # -35 consensus
    sigma70_m10: {cons: TATAAT}

  output:
    targets: [parquet, usr]
    schema: {bio_type: dna, alphabet: dna_4}
    parquet:
      path: outputs/tables/records.parquet
      deduplicate: true
      chunk_size: 64            # rows per parquet part
    usr:
      dataset: densegen_demo_tfbs_baseline   # flat id of the incumbent
      root: outputs/usr_datasets
      root_scope: config
      chunk_size: 128
      health_event_interval_seconds: 30   # notify heartbeats

  generation:
    sequence_length: 100
    expansion: {max_plans: 64}
    sampling:
      pool_strategy: iterative_subsample   # resample libraries while stalled
      library_source: build
      library_size: 12
      library_sampling_strategy: coverage_weighted
      coverage_boost_alpha: 0.15
      coverage_boost_power: 1
      avoid_failed_motifs: true
      cover_all_regulators: false
      unique_binding_sites: true
      unique_binding_cores: true
      iterative_max_libraries: 500
    plan:
      # plan 1: sites only
      - name: baseline
        sequences: 50
        sampling:
          include_inputs: [basic_sites]   # the only input
        regulator_constraints:
          groups:
            - {name: stress, members: [LexA, CpxR], min_required: 1}
          min_total_sites: 3
      # plan 2: sigma70 promoter
      - name: baseline_sigma70
        sequences: 50
        sampling:
          include_inputs: [basic_sites]
        fixed_elements:
          promoter_constraints:
            - name: sigma70
              upstream: TTGACA
              downstream: TATAAT
              spacer_length: [16, 18]   # bp between -35 and -10
              upstream_pos: [10, 60]
        regulator_constraints:
          groups: []
          min_total_sites: 2
    sequence_constraints:
      forbid_kmers:
        # no extra sigma70 hexamers
        - name: no_extra_sigma
          patterns_from_motif_sets: [sigma70_m35, sigma70_m10]
          include_reverse_complements: true
          strands: both
      allowlist:
        - kind: fixed_element_instance
          selector: {fixed_element: promoter, component: [upstream, downstream]}

  solver:
    backend: CBC                   # GUROBI on SCC
    strategy: iterate
    solver_attempt_timeout_seconds: 10
    strands: double

  runtime:
    round_robin: true
    max_accepted_per_library: 2    # solutions kept per library
    min_count_per_tf: 0
    max_duplicate_solutions: 3
    no_progress_seconds_before_resample: 10
    max_consecutive_no_progress_resamples: 25
    max_failed_solutions: 0
    max_failed_solutions_per_target: 2.0
    leaderboard_every: 50
    checkpoint_every: 10
    random_seed: 42                # reproducible libraries

  postprocess:
    pad:
      mode: adaptive    # pad to L after the solve
      end: 5prime
      gc: {mode: range, min: 0.4, max: 0.6}

  logging:
    log_dir: outputs/logs
    level: INFO
    suppress_solver_stderr: true
    progress_style: summary   # batch friendly
    progress_every: 100

# plots run after `dense run`
plots:
  source: usr
  out_dir: outputs/plots
  format: pdf
  default: [placement_occupancy_map, attempt_outcome_timeline, stage_a_pool_diversity]
  video: {enabled: false}
"""

PANEL = """\
# sigma panel: -35/-10 pairs by cross product over a background-only library
densegen:
  schema_version: "2.8"
  run: {id: Sigma_Panel, root: "."}
  motif_sets:
    m35: {a: TTGACA, b: TTGATA}
    m10: {a: TATAAT, b: TATACT}
  inputs:
    - name: pwms
      type: pwm_artifact_set
      paths: [inputs/lexA.json, inputs/cpxR.json]
      overrides_by_motif_id: {lexA: {sampling: {n_sites: 5}}}
      sampling:
        strategy: stochastic
        n_sites: 8
        mining: {batch_size: 1000, budget: {mode: fixed_candidates, candidates: 2000}}
        selection: {policy: mmr, alpha: 0.9, pool: {min_score_norm: 0.6}}
        trimming: {window_length: 12, window_strategy: max_info}
        tier_fractions: [0.001, 0.01, 0.09]
    - name: background
      type: background_pool
      sampling:
        n_sites: 40
        mining: {batch_size: 5000, budget: {mode: fixed_candidates, candidates: 50000}}
        length: {policy: range, range: [8, 12]}   # short fillers
        uniqueness: {key: sequence}
        gc: {min: 0.35, max: 0.65}
        filters:
          forbid_kmers: [TTGACA, {patterns_from_motif_sets: [m10], include_reverse_complements: true, strands: both}]
          fimo_exclude: {pwms_input: [pwms], allow_zero_hit_only: false, max_score_norm: 0.8}
  output:
    targets: [parquet]
    parquet: {path: outputs/tables/records.parquet}
  generation:
    sequence_length: 60
    sampling: {library_size: 8, library_sampling_strategy: uniform_over_pairs}
    plan:
      - name: panel
        sequences: 4
        expanded_name_template: "{base}__{up}__{down}"
        sampling: {include_inputs: [background, pwms]}
        fixed_elements:
          fixed_element_matrix:
            name: sigma70
            upstream_from_set: m35
            upstream_variant_ids: [a, b]
            downstream_from_set: m10
            downstream_variant_ids: [a, b]
            pairing: {mode: explicit_pairs, pairs: [{up: a, down: a}, {up: b, down: b}]}   # two promoters
            spacer_length: [16, 18]
            upstream_pos: [5, 15]
        regulator_constraints: {groups: []}
  solver: {backend: CBC, strategy: diverse, threads: 2}
  runtime: {random_seed: 3, max_accepted_per_library: 1, checkpoint_every: 2}
  logging: {log_dir: outputs/logs, progress_style: screen, print_visual: true}
plots:
  default: [tfbs_concentration_profile, dense_array_showcase_video]
  video: {enabled: true, fps: 12}
  options: {placement_occupancy_map: {scope: auto}}
"""


def artifact(name: str, consensus: str) -> str:
    rows = [[0.85 if b == c else 0.05 for b in "ACGT"] for c in consensus]
    return json.dumps({"schema_version": "1.0", "producer": "test", "motif_id": name, "alphabet": "ACGT",
                       "matrix_semantics": "probabilities", "background": {b: 0.25 for b in "ACGT"},
                       "probabilities": rows})


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    (tmp_path / "inputs").mkdir()
    shutil.copy(SITES, tmp_path / "inputs" / "sites.csv")
    (tmp_path / "config.yaml").write_text(BASELINE)
    return tmp_path / "config.yaml"


@pytest.fixture
def panel(tmp_path: Path) -> Path:
    d = tmp_path / "panel"
    (d / "inputs").mkdir(parents=True)
    (d / "inputs" / "lexA.json").write_text(artifact("lexA", "CTGTATATATATACAG"))
    (d / "inputs" / "cpxR.json").write_text(artifact("cpxR", "GTAAAGTTGTAAAG"))
    (d / "config.yaml").write_text(PANEL)
    return d / "config.yaml"


def comments(text: str) -> list[str]:
    """Comment texts of a YAML document (full-line and end-of-line), without the leading '#'."""
    out = []
    for line in text.splitlines():
        m = re.search(r"(?:^|\s)#\s?(.*)$", line)
        if m and m.group(1).strip():
            out.append(m.group(1).strip())
    return out


def validate(config: Path) -> None:
    r = run_cli("dense", "validate-config", "-c", str(config))
    assert r.returncode == 0 and "Config is valid" in r.stdout, r.stdout + r.stderr


def test_baseline_converts_to_a_valid_config_keeping_every_comment(baseline):
    new = baseline.with_name("new.yaml")
    r = run_cli("dense", "config", "migrate", str(baseline), "-o", str(new))
    assert r.returncode == 0, r.stderr
    assert f"Wrote {new}" in r.stdout and "not carried  densegen.solver.backend = CBC: the solver is always CP-SAT" in r.stdout
    text = new.read_text()
    kept = comments(text)
    for c in comments(BASELINE):
        assert c in kept, f"comment lost: {c!r}"
    validate(new)
    cfg = __import__("yaml").safe_load(text)
    assert cfg["schema_version"] == 1 and "densegen" not in cfg
    assert cfg["output"]["usr"] == {"dataset": "densegen/demo_tfbs_baseline", "root": "outputs/usr_datasets"}
    assert cfg["generation"]["max_plans"] == 64
    assert cfg["generation"]["sampling"]["strategy"] == "coverage_weighted" and cfg["generation"]["sampling"]["coverage_alpha"] == 0.15
    plans = cfg["generation"]["plans"]
    assert [p["include_inputs"] for p in plans] == [["basic_sites"], ["basic_sites"]]
    assert plans[1]["fixed_elements"]["promoter_constraints"][0]["spacer"] == [16, 18]
    assert cfg["generation"]["sequence_constraints"]["forbid_kmers"] == [{"motif_sets": ["sigma70_m35", "sigma70_m10"]}]
    assert cfg["solver"] == {"strategy": "optimal", "time_limit_s": 10, "strands": "double", "solutions_per_library": 2}
    assert cfg["runtime"]["seed"] == 42 and cfg["runtime"]["max_stalled_libraries"] == 25
    assert cfg["runtime"]["max_failed_solutions"] is None and cfg["runtime"]["health_interval_s"] == 30
    assert cfg["logging"] == {"level": "INFO", "progress": "lines"}
    assert cfg["plots"] == {"formats": ["pdf"], "default": ["occupancy", "progress"]}
    # every dropped setting is marked in place, with its reason
    assert "# dense config migrate: not carried `backend: CBC`: the solver is always CP-SAT" in text
    assert re.search(r"not carried `postprocess: .*\n.*pad to L after the solve", text)


def test_report_lists_every_setting_not_carried_with_a_reason(baseline):
    r = run_cli("dense", "config", "migrate", str(baseline), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    dropped = {n["key"]: n["reason"] for n in doc["not_carried"]}
    for key in ("densegen.solver.backend", "densegen.generation.sampling.pool_strategy", "densegen.postprocess",
                "densegen.logging.log_dir", "densegen.output.usr.chunk_size", "densegen.runtime.min_count_per_tf",
                "densegen.generation.sequence_constraints.allowlist", "densegen.inputs[0].columns.source",
                "plots.source", "plots.video"):
        assert dropped.get(key), f"{key} not reported: {sorted(dropped)}"
    assert all(dropped.values())
    assert any(n["key"] == "plots.default" and n["value"] == "stage_a_pool_diversity" for n in doc["not_carried"])
    assert "densegen.generation.plan -> plans" in doc["changed"]
    assert doc["output"] is None and doc["config"].startswith("# Converted by `dense config migrate`")


def test_stdout_mode_prints_only_the_config(baseline, tmp_path):
    r = run_cli("dense", "config", "migrate", str(baseline))
    assert r.returncode == 0
    assert r.stdout.startswith("# Converted by") and "not carried  densegen.solver.backend" in r.stderr
    (baseline.parent / "piped.yaml").write_text(r.stdout)
    validate(baseline.parent / "piped.yaml")


def test_panel_with_pwm_artifacts_background_and_matrix(panel):
    mig = migrate_config(panel)
    new = panel.with_name("config.new.yaml")
    new.write_text(mig.text)
    validate(new)
    cfg = __import__("yaml").safe_load(mig.text)
    assert cfg["run"]["id"] == "sigma_panel"
    pwm, bg = cfg["inputs"]
    assert pwm["type"] == "pwm" and pwm["format"] == "artifact" and pwm["paths"] == ["inputs/lexA.json", "inputs/cpxR.json"]
    assert pwm["sampling"] == {"strategy": "stochastic", "n_sites": 8, "candidates": 2000, "min_score_norm": 0.6, "trim_to": 12}
    assert bg["n_sites"] == 40 and bg["length"] == [8, 12] and bg["gc"] == {"min": 0.35, "max": 0.65}
    assert bg["max_candidates"] == 50000 and bg["exclude_pwm_hits"] == {"inputs": ["pwms"], "max_score_norm": 0.8}
    assert bg["forbid_kmers"] == ["TTGACA", {"motif_sets": ["m10"]}] and "sampling" not in bg
    plan = cfg["generation"]["plans"][0]
    assert plan["name_template"] == "{plan}__{up}__{down}" and plan["include_inputs"] == ["background", "pwms"]
    m = plan["fixed_elements"]["fixed_element_matrix"]
    assert m["pairing"] == "explicit_pairs" and m["pairs"] == [{"up": "a", "down": "a"}, {"up": "b", "down": "b"}]
    assert m["upstream_variants"] == ["a", "b"] and m["spacer"] == [16, 18]
    assert cfg["generation"]["sampling"]["strategy"] == "uniform"
    assert cfg["solver"] == {"strategy": "diverse", "workers": 2, "solutions_per_library": 1}
    assert cfg["logging"] == {"progress": "bar"} and cfg["plots"] == {"default": ["positions", "sequences"]}
    keys = {n.key for n in mig.not_carried}
    assert {"densegen.inputs[0].overrides_by_motif_id", "densegen.inputs[0].sampling.tier_fractions",
            "densegen.inputs[1].sampling.uniqueness", "plots.video", "plots.options"} <= keys
    assert "two promoters" in mig.text  # the comment on the reshaped pairing mapping is kept


def test_output_in_another_directory_rebases_relative_paths(baseline, tmp_path):
    out = tmp_path / "elsewhere" / "config.yaml"
    out.parent.mkdir()
    r = run_cli("dense", "config", "migrate", str(baseline), "-o", str(out))
    assert r.returncode == 0, r.stderr
    cfg = __import__("yaml").safe_load(out.read_text())
    assert cfg["inputs"][0]["path"] == "../inputs/sites.csv" and cfg["run"]["root"] == ".."
    validate(out)


def test_unknown_old_keys_are_dropped_and_listed(baseline):
    baseline.write_text(BASELINE.replace("    strands: double\n", "    strands: double\n    stratgy_typo: 1   # oops\n"))
    mig = migrate_config(baseline)
    hit = [n for n in mig.not_carried if n.key == "densegen.solver.stratgy_typo"]
    assert hit and "not a setting this converter knows" in hit[0].reason
    assert "oops" in mig.text


@pytest.mark.parametrize(("text", "needle"), [
    ("schema_version: 1\nrun: {id: x}\n", "already a config of this dense"),
    ("run: {id: x}\n", "not a config of the previous DenseGen (no `densegen:` section)"),
    ("densegen:\n  schema_version: '3.0'\n", "densegen.schema_version is 3.0; this converter reads 2.x"),
    ("densegen:\n  schema_version: '2.9'\n  inputs:\n    - {name: m, type: pwm_matrix_csv, path: m.csv}\n",
     "pwm_matrix_csv input, which has no counterpart here"),
    ("densegen:\n  schema_version: '2.9'\n  inputs:\n    - {name: s, type: binding_sites, path: s.xlsx, format: xlsx}\n",
     "reads an Excel sheet"),
    ("densegen: [\n", "invalid YAML at line"),
])
def test_refusals_are_one_line(tmp_path, text, needle):
    old = tmp_path / "old.yaml"
    old.write_text(text)
    r = run_cli("dense", "config", "migrate", str(old), "-o", str(tmp_path / "new.yaml"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("dense: error: "), r.stderr
    assert needle in lines[0]
    assert not (tmp_path / "new.yaml").exists()


def test_converted_config_that_does_not_validate_writes_nothing(baseline, tmp_path):
    baseline.write_text(BASELINE.replace("sequence_length: 100", "sequence_length: 2"))
    r = run_cli("dense", "config", "migrate", str(baseline), "-o", str(tmp_path / "new.yaml"))
    assert r.returncode == 1 and "after conversion: `generation.sequence_length`" in r.stderr
    assert not (tmp_path / "new.yaml").exists()


def test_old_config_given_to_validate_config_points_at_the_converter(baseline):
    r = run_cli("dense", "validate-config", "-c", str(baseline))
    assert r.returncode == 1 and "dense config migrate config.yaml -o NEW.yaml" in r.stderr


def test_plot_id_mapping_names_real_plots():
    from dnadesign.densegen.plots import PLOTS

    assert set(PLOT_IDS.values()) <= set(PLOTS)


def test_workspace_init_keeps_every_comment_and_layout(tmp_path):
    for ws in ("demo_sites", "demo_pwm", "demo_promoter_matrix"):
        src = (REPO / "workspaces" / ws / "config.yaml").read_text()
        r = run_cli("dense", "workspace", "init", f"copy_{ws}", "--from", ws, "--root", str(tmp_path), "--targets", "usr")
        assert r.returncode == 0, r.stderr
        out = (tmp_path / f"copy_{ws}" / "config.yaml").read_text()
        assert comments(src) == [c for c in comments(out) if not c.startswith(("DenseGen workspace", "Paths are relative"))]
        changed = [(a, b) for a, b in zip(src.splitlines(), out.splitlines()[2:], strict=True) if a != b]
        assert all(re.search(r"\b(id|targets|usr):", a) for a, _ in changed), changed  # only id, targets, dataset differ
        validate(tmp_path / f"copy_{ws}" / "config.yaml")
