"""Write the model files of ``tests/test_legacy_models.py``'s second set: every estimator, as
saved by skrnn 0.1.0 in model-file format 1 with the parameters it had in December 2026
(``tol``, the generator's grid readers and two levels, the recogniser).

The committed ``format1_*`` files were written by skrnn at the commit that added this script;
running it again writes files with the skrnn that is installed now, so only do that on purpose.
Each later format version adds a set of its own beside these, and every set stays loadable.

    python tests/data/make_format1_models.py
"""

from pathlib import Path

import numpy as np

import skrnn
from skrnn.datasets import load_digits_images, make_digit_strings, make_shapes

HERE = Path(__file__).parent


def main():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:200], y[:200]
    small = dict(hidden_size=4, max_epochs=2, random_state=0, n_threads=1)

    clf = skrnn.RNNImageClassifier(cell="gru", bidirectional=True, **small).fit(X, y)
    clf.save(HERE / "format1_classifier.skrnn")
    reg = skrnn.RNNImageRegressor(order="rows", **small).fit(X, X.mean(axis=(1, 2)))
    reg.save(HERE / "format1_regressor.skrnn")
    shapes, masks = make_shapes(n_samples=20, image_size=12, random_state=0)
    seg = skrnn.RNNSegmenter(conv=(2,), head=(4,), **small).fit(shapes, masks)
    seg.save(HERE / "format1_segmenter.skrnn")
    binary = (X[:100] > 8).astype(np.uint8)
    gen = skrnn.RNNImageGenerator(reader="rows", embedding_dim=4, **small).fit(binary, y[:100])
    gen.save(HERE / "format1_generator.skrnn")
    lines, texts = make_digit_strings(60, min_length=1, max_length=3, random_state=0)
    rec = skrnn.RNNSequenceRecognizer(conv=(2,), **small).fit(lines, texts)
    rec.save(HERE / "format1_recognizer.skrnn")

    np.savez_compressed(
        HERE / "format1_expected.npz",
        digits=X[:10],
        labels=y[:10],
        binary=binary[:10],
        shapes=shapes[:3],
        lines=lines[:5],
        classifier_proba=clf.predict_proba(X[:10]),
        regressor=reg.predict(X[:10]),
        segmenter_proba=seg.predict_proba(shapes[:3]),
        generator_log_likelihood=gen.score_samples(binary[:10], y[:10]),
        generator_sample=gen.sample(3, y=[1, 2, 3], random_state=0),
        recognizer=np.array(list(rec.predict(lines[:5])), dtype=str),
    )


if __name__ == "__main__":
    main()
