"""Sequence classification: pooling with lengths equals each sequence alone, metrics against scikit-learn,
splits, batches, vocabularies, the user file formats, and the loop's higher-is-better monitor."""

import json

import numpy as np
import pytest
import torch

from rnnlab.data import DataError
from rnnlab.data.sequences import LabelledSequences, LengthBuckets, collate, load_labelled, stratified_split
from rnnlab.data.tokens import TokenVocab, tokenize
from rnnlab.models import RecurrentConfig, SequenceClassifier, SequenceClassifierConfig
from rnnlab.train import StepLoss, Task, TrainConfig, fit
from rnnlab.train.classify import ClassifyRunConfig, ClassifyDataConfig, ClassifyTask, prepare_split
from rnnlab.train.metrics import classification_report

LAYERS = [
    dict(cell="lstm"),
    dict(cell="lstm", peephole=True, layer_norm=True, proj_size=3),
    dict(cell="gru", num_layers=2),
    dict(cell="rnn", coupled=False),
]


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layer", LAYERS, ids=lambda d: "-".join(f"{k}" for k in d if d[k] is not False))
def test_pooling_with_lengths_equals_each_sequence_alone(pooling, bidirectional, layer):
    torch.manual_seed(0)
    cfg = SequenceClassifierConfig(num_classes=3, n_features=4, embed=5, pooling=pooling,
                                   rnn=RecurrentConfig(hidden_size=6, bidirectional=bidirectional, **layer))
    model = SequenceClassifier(cfg).double().eval()
    lengths = torch.tensor([7, 3, 1, 5])
    x = torch.randn(4, 7, 4, dtype=torch.float64)
    x[torch.arange(7)[None, :] >= lengths[:, None]] = 99.0  # garbage in the padding must not matter
    batched = model.features(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model.features(x[b:b + 1, :n])  # unpadded, no lengths
        torch.testing.assert_close(batched[b], alone[0], rtol=1e-9, atol=1e-9)


def test_last_pooling_is_forward_end_and_reverse_start():
    torch.manual_seed(1)
    model = SequenceClassifier(SequenceClassifierConfig(num_classes=2, vocab_size=10, embed=4, pooling="last", rnn=RecurrentConfig(
        hidden_size=5, bidirectional=True, init="orthogonal"))).double()
    x, lengths = torch.randint(1, 10, (3, 6)), torch.tensor([6, 2, 4])
    out, _ = model.rnn(model.inp(x.t()).double(), lengths=lengths)  # (T, B, 2H)
    s = model.features(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(s[b, :5], out[n - 1, b, :5])   # forward direction at its last valid step
        torch.testing.assert_close(s[b, 5:], out[0, b, 5:])       # reverse direction after reading back to step 0


def test_classification_report_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    p[p == 3] = 2  # class 3 never predicted: precision 0 by convention
    r = classification_report(y, p, 4)
    assert r["accuracy"] == pytest.approx(metrics.accuracy_score(y, p))
    assert r["macro_f1"] == pytest.approx(metrics.f1_score(y, p, average="macro", zero_division=0))
    np.testing.assert_allclose(r["precision"], metrics.precision_score(y, p, average=None, zero_division=0))
    np.testing.assert_allclose(r["recall"], metrics.recall_score(y, p, average=None, zero_division=0))
    np.testing.assert_array_equal(r["confusion"], metrics.confusion_matrix(y, p, labels=range(4)))


def test_stratified_split_keeps_proportions_and_follows_the_seed():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    tr, va, te = stratified_split(y, 0.1, 0.2, seed=3)
    assert len(set(tr) | set(va) | set(te)) == 100 and not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert [int((y[te] == c).sum()) for c in range(3)] == [12, 6, 2]
    assert [int((y[va] == c).sum()) for c in range(3)] == [6, 3, 1]
    again = stratified_split(y, 0.1, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(te, stratified_split(y, 0.1, 0.2, seed=4)[2])
    mask = np.zeros(100, bool)
    mask[::4] = True
    tr, va, te = stratified_split(y, 0.1, 0.5, seed=0, test_mask=mask)
    assert set(te) == set(np.flatnonzero(mask)) and not set(tr) & set(te)


def test_length_buckets_cover_each_epoch_group_lengths_and_resume():
    lengths = np.random.default_rng(0).integers(1, 100, 257)
    b = LengthBuckets(lengths, 16, seed=1, pool=4)
    epoch = [next(b) for _ in range(len(b))]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(257))
    spread = np.mean([np.ptp(lengths[i]) for i in epoch])
    assert spread < 0.5 * np.ptp(lengths)  # sorted within pools: batches of similar lengths
    next(b), next(b)
    state = b.state_dict()
    ahead = [next(b).tolist() for _ in range(5)]
    c = LengthBuckets(lengths, 16, seed=1, pool=4)
    c.load_state_dict(state)
    assert [next(c).tolist() for _ in range(5)] == ahead


def test_token_vocab_min_count_unknown_and_modes():
    v = TokenVocab.build(["the cat", "the dog", "The end!"], "word", min_count=2, kind="classifier")
    assert v.tokens == ["<pad>", "<unk>", "the"]
    assert v.encode("the bird") == [2, 1]
    assert tokenize("Don't stop!", "word") == ["don't", "stop", "!"]
    c = TokenVocab.build(["abca"], "char", min_count=1, kind="classifier")
    assert c.encode("abz") == [c.index["a"], c.index["b"], 1]
    assert TokenVocab.from_json(json.loads(json.dumps(v.to_json())), kind="classifier") == v


def test_collate_pads_with_zeros_and_returns_lengths():
    x, lengths = collate([[3, 4], [5], [6, 7, 8]])
    assert x.tolist() == [[3, 4, 0], [5, 0, 0], [6, 7, 8]] and lengths.tolist() == [2, 1, 3]
    x, lengths = collate([np.ones((2, 3), np.float32), np.ones((1, 3), np.float32)])
    assert x.shape == (2, 2, 3) and x[1, 1].abs().sum() == 0


def test_user_formats(tmp_path):
    (tmp_path / "t.csv").write_text("review,stars\ngood film,pos\nbad film,neg\n", encoding="utf-8")
    d = load_labelled(str(tmp_path / "t.csv"), ClassifyDataConfig(text_column="review", label_column="stars").columns())
    assert d.kind == "text" and d.items == ["good film", "bad film"] and d.label_names == ["neg", "pos"]

    rows = [{"sequence": [[1, 2], [3, 4], [5, 6]], "label": 1}, {"sequence": [[0, 0]], "label": 10},
            {"sequence": [7, 8], "label": 2}]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match="ragged"):  # [7, 8] is two steps of one feature: not 2 features
        load_labelled(str(tmp_path / "s.jsonl"))
    rows[2]["sequence"] = [[7, 8]]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    d = load_labelled(str(tmp_path / "s.jsonl"))
    assert d.kind == "numeric" and d.items[0].shape == (3, 2) and d.label_names == ["1", "2", "10"]

    (tmp_path / "s.csv").write_text('sequence,label\n"[[1, 2], [3, 4]]",a\n"[[5, 6]]",b\n', encoding="utf-8")
    d = load_labelled(str(tmp_path / "s.csv"))
    assert d.items[0].tolist() == [[1, 2], [3, 4]] and d.labels == ["a", "b"]

    (tmp_path / "l.csv").write_text("id,step,x,y,label\n7,1,3,4,b\n7,0,1,2,b\n2,0,5,6,a\n", encoding="utf-8")
    d = load_labelled(str(tmp_path / "l.csv"))
    assert [a.tolist() for a in d.items] == [[[1, 2], [3, 4]], [[5, 6]]] and d.labels == ["b", "a"]


def _toy_numeric(n=60):
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(int(rng.integers(2, 6)), 2)).astype(np.float32) + (i % 2) for i in range(n)]
    return LabelledSequences(items, [str(i % 2) for i in range(n)], "numeric", "toy")


def test_feature_scaling_uses_the_training_split_only():
    cfg = ClassifyRunConfig(data=ClassifyDataConfig(data="toy", batch=8), model=SequenceClassifierConfig(embed=4, rnn=RecurrentConfig(hidden_size=4, init="orthogonal")),
                            train=TrainConfig(max_steps=2, max_time=None, eval_every=2, warmup_steps=1))
    data = _toy_numeric()
    split = prepare_split(cfg, data)
    task = ClassifyTask(cfg, split=split)
    train_steps = np.concatenate([data.items[i] for i in split.train])
    np.testing.assert_allclose(task.encoder.mean, train_steps.mean(0), rtol=1e-5)
    for i in split.test:
        data.items[i] = data.items[i] + 1000.0  # moving the test split must not move the statistics
    again = ClassifyTask(cfg, split=split)
    np.testing.assert_allclose(again.encoder.mean, task.encoder.mean)


class _Scripted(Task):
    """A task whose validation accuracy follows a script: what the loop does with it is the test."""

    name, unit, metrics, monitor = "scripted", "item", ("loss", "acc"), "val_acc"

    def __init__(self, accs, mode):
        self.accs, self.monitor_mode = list(accs), mode
        self.model = torch.nn.Linear(1, 1)
        self.batches = LengthBuckets([1] * 4, 2)

    def step_loss(self, batch, state):
        return StepLoss(self.model(torch.ones(1, 1)).pow(2).mean(), None, 1)

    def evaluate(self):
        acc = self.accs.pop(0)
        return {"loss": 1 - acc, "acc": acc}

    def config_dict(self):
        return {}


def test_fit_monitor_mode_max_keeps_the_highest_and_early_stops_on_it():
    cfg = TrainConfig(max_steps=10, max_time=None, eval_every=1, warmup_steps=0, patience=2)
    result = fit(_Scripted([0.5, 0.9, 0.8, 0.85, 0.95], "max"), cfg, None, progress=False, log=lambda s: None)
    assert result.stopped == "early_stop" and result.step == 4  # 0.8 and 0.85 do not beat 0.9
    assert result.best["step"] == 2 and result.best["val_acc"] == 0.9
    assert "best val_acc 0.900" in result.message
    # the default stays "lower wins": the same script read as a loss keeps 0.5
    result = fit(_Scripted([0.5, 0.9, 0.8, 0.85, 0.95], "min"), cfg, None, progress=False, log=lambda s: None)
    assert result.best["step"] == 1 and result.step == 3


def test_classify_task_monitors_accuracy_or_loss():
    cfg = ClassifyRunConfig(data=ClassifyDataConfig(data="toy", batch=8), model=SequenceClassifierConfig(embed=4, rnn=RecurrentConfig(hidden_size=4, init="orthogonal")))
    task = ClassifyTask(cfg, split=prepare_split(cfg, _toy_numeric()))
    assert (task.monitor, task.monitor_mode) == ("val_acc", "max")
    cfg.monitor = "loss"
    task = ClassifyTask(cfg, split=prepare_split(cfg, _toy_numeric()))
    assert (task.monitor, task.monitor_mode) == ("val_loss", "min")
