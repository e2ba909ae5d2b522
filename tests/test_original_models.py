"""Every model of the original design, built by setting skrnn parameters."""

import numpy as np
import pytest
import torch

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn.datasets import make_sentiment_sequences


def test_elman_cell_is_exactly_the_formula(digits):
    """h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h), y = W_hy h_T + b_y, recomputed in numpy."""
    X, _ = digits
    X = X[:60]
    target = X.sum(axis=(1, 2))
    # On the CPU: a GPU's cuDNN kernels compute in TF32, less precisely than the formula here.
    reg = RNNImageRegressor(
        cell="rnn", hidden_size=6, bidirectional=False, max_epochs=2, random_state=0, device="cpu"
    ).fit(X, target)
    module = reg.net_.module_
    rnn = module.encoder.layers.layer
    assert isinstance(rnn, torch.nn.RNN) and rnn.nonlinearity == "tanh"
    W_xh = rnn.weight_ih_l0.detach().double().cpu().numpy()
    W_hh = rnn.weight_hh_l0.detach().double().cpu().numpy()
    b_h = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double().cpu().numpy()
    output = module.head[-1]
    W_hy = output.weight.detach().double().cpu().numpy()
    b_y = output.bias.detach().double().cpu().numpy()
    mean = module.standardize.mean.double().cpu().numpy()
    scale = module.standardize.scale.double().cpu().numpy()

    sequences = (X[..., None] - mean) * scale  # standardised images, read row by row
    sequences = sequences.reshape(len(X), 8, 8)
    h = np.zeros((len(X), 6))
    for t in range(sequences.shape[1]):
        h = np.tanh(h @ W_hh.T + sequences[:, t] @ W_xh.T + b_h)
    y = h @ W_hy.T + b_y

    outputs = reg._forward(X)
    np.testing.assert_allclose(outputs, y, atol=1e-5)
    # and the regressor's prediction is that output mapped back to the target scale
    np.testing.assert_allclose(reg.predict(X), y[:, 0] * reg._y_scale + reg._y_mean, rtol=1e-5)


def make_token_sequences(n=600, seed=0):
    return make_sentiment_sequences(n, random_state=seed)


def keras_model(**overrides):
    """Embedding(10000, 64) → SimpleRNN(64, return_sequences) → SimpleRNN(32) → Dense(16, relu)
    → Dense(1, sigmoid), Adam and binary cross-entropy."""
    params = dict(
        cell="rnn",
        embedding_dim=64,
        n_tokens=10000,
        hidden_size=(64, 32),
        bidirectional=False,
        readout="last",
        head=(16,),
        loss="binary_cross_entropy",
        label_smoothing=0.0,
        optimizer="adam",
        lr=1e-3,
        lr_schedule="constant",
    )
    return RNNImageClassifier(**{**params, **overrides})


def test_keras_model_has_the_keras_architecture():
    tokens, y = make_token_sequences(n=40)
    clf = keras_model(max_epochs=1, random_state=0).fit(tokens, y)
    module = clf.net_.module_
    assert module.embedding.num_embeddings == 10000 and module.embedding.embedding_dim == 64
    first, dropout, second = module.encoder.layers
    assert (first.layer.input_size, first.layer.hidden_size) == (64, 64)
    assert (second.layer.input_size, second.layer.hidden_size) == (64, 32)
    linears = [m for m in module.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 16), (16, 1)]
    assert any(isinstance(m, torch.nn.ReLU) for m in module.head)
    assert clf.predict_proba(tokens[:3]).shape == (3, 2)


def test_keras_model_learns_token_sequences():
    tokens, y = make_token_sequences()
    clf = keras_model(max_epochs=12, batch_size=32, random_state=0)
    clf.fit(tokens[:500], y[:500])
    assert clf.score(tokens[500:], y[500:]) > 0.75


def test_pytorch_model_one_rnn_layer_and_a_linear_on_the_last_step(digits_split):
    X, y, X_test, y_test = digits_split
    clf = RNNImageClassifier(
        cell="rnn",
        hidden_size=64,
        bidirectional=False,
        readout="last",
        max_epochs=10,
        random_state=0,
    ).fit(X, y)
    module = clf.net_.module_
    assert isinstance(module.encoder.layers.layer, torch.nn.RNN)
    assert module.encoder.layers.layer.batch_first
    assert [type(m).__name__ for m in module.head] == ["Dropout", "Linear"]
    assert clf.score(X_test, y_test) > 0.8


def test_binary_sigmoid_output_gives_the_multiclass_api(digits, tiny):
    X, y = digits
    keep = y < 2
    clf = RNNImageClassifier(loss="binary_cross_entropy", **tiny).fit(X[keep], y[keep])
    assert clf.net_.module_.head[-1].out_features == 1
    proba = clf.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X[keep], y[keep]) > 0.9
    with pytest.raises(ValueError, match="is for two classes"):
        RNNImageClassifier(loss="binary_cross_entropy").fit(X, y)


def test_stacked_layers_of_different_sizes_and_a_dense_head(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(**{**tiny, "hidden_size": (24, 12)}, head=(16, 8)).fit(X, y)
    first, _, second = clf.net_.module_.encoder.layers
    assert first.layer.hidden_size == 24 and second.layer.hidden_size == 12
    assert second.layer.input_size == 48  # both directions of the first layer
    widths = [m.out_features for m in clf.net_.module_.head if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8, 10]


def test_pixel_levels_as_tokens(digits, tiny):
    X, y = digits
    levels = X.astype(np.int64)  # the digits' 17 ink levels, 0-16
    clf = RNNImageClassifier(embedding_dim=4, **tiny).fit(levels, y)
    assert clf.n_tokens_ == 17
    assert clf.score(levels, y) > 0.5


def test_token_errors(digits):
    tokens, y = make_token_sequences(n=20)
    clf = RNNImageClassifier(embedding_dim=8, hidden_size=8, max_epochs=1).fit(tokens, y)
    with pytest.raises(ValueError, match="token id 10000, but this model knows ids 0 to"):
        clf.predict(np.full((2, 50), 10000))
    clf.set_params(n_tokens=10000).fit(tokens, y)
    assert clf.n_tokens_ == 10000
    with pytest.raises(ValueError, match="must be >= 0"):
        clf.predict(np.full((2, 50), -1))
    with pytest.raises(ValueError, match="must hold integer token ids"):
        RNNImageClassifier(embedding_dim=8).fit(tokens.astype(float), y)
