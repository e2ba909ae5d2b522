import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skrnn import RNNImageClassifier, cells
from skrnn.cells import get_cell, list_cells, register_cell

PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "examples" / "skrnn-indrnn" / "src"


@pytest.fixture
def clean_registry():
    """Let a test add cells and plugins, then put the registry back as it was."""
    saved = dict(cells._CELLS)
    loaded = cells._plugins_loaded
    cells._plugins_loaded = False
    yield
    cells._CELLS.clear()
    cells._CELLS.update(saved)
    cells._plugins_loaded = loaded


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch, clean_registry):
    """Install the example IndRNN plugin as a distribution would: metadata on sys.path.

    The package's code is the example in examples/skrnn-indrnn; the metadata declares its entry
    point, plus one broken entry point, exactly as pip would write them.
    """
    dist_info = tmp_path / "skrnn_indrnn-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: skrnn-indrnn\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [skrnn.cells]
            indrnn = skrnn_indrnn:make_indrnn
            broken = skrnn_indrnn_missing_module:make_cell
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(PLUGIN_SOURCE))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("skrnn_indrnn", None)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_builtin_cells_map_sequences_to_per_step_outputs(name, bidirectional):
    module = get_cell(name)(5, 7, 2, bidirectional, 0.0)
    out = module(torch.zeros(3, 4, 5))
    assert out.shape == (3, 4, 7 * (2 if bidirectional else 1))


def test_builtin_cells_use_torchs_fused_layers():
    assert isinstance(get_cell("rnn")(3, 4, 1, False, 0.0).layer, torch.nn.RNN)
    assert get_cell("rnn")(3, 4, 1, False, 0.0).layer.nonlinearity == "tanh"
    assert isinstance(get_cell("lstm")(3, 4, 1, False, 0.0).layer, torch.nn.LSTM)
    assert isinstance(get_cell("gru")(3, 4, 1, False, 0.0).layer, torch.nn.GRU)


def test_list_cells_starts_with_the_builtins():
    assert list_cells()[:3] == ["rnn", "lstm", "gru"]


def test_unknown_cell_error_lists_the_available_names():
    with pytest.raises(ValueError, match=r"Unknown cell 'transformer'.*rnn, lstm, gru"):
        get_cell("transformer")


def test_unknown_cell_name_fails_at_fit_with_the_same_message(digits):
    X, y = digits
    with pytest.raises(ValueError, match="Available cells: rnn, lstm, gru"):
        RNNImageClassifier(cell="nope").fit(X, y)


def test_register_cell_as_decorator_and_refuse_silent_overwrite(clean_registry):
    @register_cell("wide_gru")
    def make(input_size, hidden_size, num_layers, bidirectional, dropout):
        return get_cell("gru")(input_size, 2 * hidden_size, num_layers, bidirectional, dropout)

    assert "wide_gru" in list_cells()
    with pytest.raises(ValueError, match="already registered"):
        register_cell("wide_gru", lambda *args: None)


def test_registered_cell_is_usable_in_an_estimator(clean_registry, digits, tiny):
    register_cell("gru_alias", get_cell("gru"))
    X, y = digits
    clf = RNNImageClassifier(cell="gru_alias", **tiny).fit(X, y)
    assert clf.score(X, y) > 0.6  # measured: 0.755 (ten classes)


def test_entry_point_plugin_is_found_and_a_broken_one_warns(installed_plugin):
    with pytest.warns(RuntimeWarning, match="could not load the cell plugin 'broken'"):
        names = list_cells()
    assert "indrnn" in names and "broken" not in names
    module = get_cell("indrnn")(3, 4, 2, True, 0.0)
    assert module(torch.zeros(2, 5, 3)).shape == (2, 5, 8)


def test_entry_point_cell_works_in_a_grid_search(installed_plugin, digits):
    X, y = digits
    search = GridSearchCV(
        RNNImageClassifier(hidden_size=16, max_epochs=2, batch_size=32, lr=1e-2, random_state=0),
        {"cell": ["gru", "indrnn"]},
        cv=2,
    )
    with pytest.warns(RuntimeWarning, match="broken"):
        search.fit(X, y)
    assert search.cv_results_["param_cell"].tolist() == ["gru", "indrnn"]
    # Both cells learn beyond the chance accuracy of 0.1 (measured: 0.38 gru, 0.22 indrnn).
    assert search.cv_results_["mean_test_score"].min() > 0.15
    assert search.best_estimator_.predict(X[:5]).shape == (5,)
