"""Write the model files that ``tests/test_legacy_models.py`` loads as saved by an older skrnn.

The committed files in this folder were written by skrnn at commit b70770d (before the package
was reorganised into private modules), so loading them proves that files saved before that
change still load and predict the same. Running this script again writes files with the skrnn
that is installed now; only do that on purpose, when the model-file format changes.

    python tests/data/make_legacy_models.py
"""

from pathlib import Path

import numpy as np

import skrnn
from skrnn.datasets import load_digits_images, make_shapes

HERE = Path(__file__).parent


def main():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:300], y[:300]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    small = dict(hidden_size=4, max_epochs=2, random_state=0)

    clf = skrnn.RNNImageClassifier(cell="lstm", class_weight="balanced", **small)
    clf.fit(X, names[y])
    clf.save(HERE / "legacy_classifier.skrnn")

    reg = skrnn.RNNImageRegressor(order="columns", head=(4,), **small)
    reg.fit(X, np.stack([X.sum(axis=(1, 2)), X[:, :4].mean(axis=(1, 2))], axis=1))
    reg.save(HERE / "legacy_regressor.skrnn")

    shapes, masks = make_shapes(n_samples=20, image_size=12, random_state=0)
    seg = skrnn.RNNSegmenter(cell="rnn", num_layers=1, head=(4,), ignore_label=255, **small)
    seg.fit(shapes, masks)
    seg.save(HERE / "legacy_segmenter.skrnn")

    gen = skrnn.RNNImageGenerator(embedding_dim=4, **small)
    gen.fit(X[:100], y[:100])
    gen.save(HERE / "legacy_generator.skrnn")

    np.savez_compressed(
        HERE / "legacy_expected.npz",
        digits=X[:10],
        shapes=shapes[:3],
        classifier_proba=clf.predict_proba(X[:10]),
        classifier_labels=clf.predict(X[:10]),
        regressor=reg.predict(X[:10]),
        segmenter_proba=seg.predict_proba(shapes[:3]),
        generator_log_likelihood=gen.score_samples(X[:10], y[:10]),
        generator_sample=gen.sample(3, y=[1, 2, 3], random_state=0),
    )


if __name__ == "__main__":
    main()
