import pytest
import torch

from pretrainlab.data.tokenizer import TokenizerSpec, _build, wrap
from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.qa import QAFeatures, decode_spans, prepare_qa_features, squad_scores

WORDS = [f"w{i}" for i in range(60)]
ANSWER = "the eiffel tower"
QUESTION = "where is the eiffel tower ?"
# The answer sits after w44, far into a context that needs several windows.
LONG = " ".join(WORDS[:45]) + f" {ANSWER} " + " ".join(WORDS[45:])
SHORT = "paris france is home to it ."
MAX_LEN, STRIDE = 24, 6


@pytest.fixture(scope="module")
def tokenizer():
    tok, trainer = _build(TokenizerSpec(vocab_size=300, min_frequency=1))
    tok.train_from_iterator([" ".join(WORDS), QUESTION, SHORT, LONG], trainer=trainer)
    return wrap(tok, max_length=512)


def _rows() -> list[dict]:
    return [
        {
            "id": "a",
            "question": QUESTION,
            "context": LONG,
            "answers": {"text": [ANSWER], "answer_start": [LONG.index(ANSWER)]},
        },
        {
            "id": "b",
            "question": QUESTION,
            "context": SHORT,
            "answers": {"text": ["paris"], "answer_start": [0]},
        },
    ]


@pytest.fixture(scope="module")
def feats(tokenizer) -> QAFeatures:
    return prepare_qa_features(_rows(), tokenizer, max_length=MAX_LEN, stride=STRIDE)


def _ctx(window: list) -> list[tuple[int, int]]:
    return [span for span in window if span is not None]


def _answer_windows(feats: QAFeatures) -> list[int]:
    """Windows of example 0 whose context covers the whole answer (found from offsets alone)."""
    a = LONG.index(ANSWER)
    return [
        w
        for w, ex in enumerate(feats.example_index)
        if ex == 0
        and _ctx(feats.offsets[w])[0][0] <= a
        and _ctx(feats.offsets[w])[-1][1] >= a + len(ANSWER)
    ]


def test_windows_overlap_and_start_with_question(tokenizer, feats):
    n0 = feats.example_index.count(0)
    assert n0 >= 3 and feats.example_index == [0] * n0 + [1]
    assert feats.input_ids.shape[1] <= MAX_LEN
    q = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    head = [tokenizer.cls_token_id, *q, tokenizer.sep_token_id]
    for w in range(len(feats)):
        assert feats.input_ids[w, : len(head)].tolist() == head
        assert all(span is None for span in feats.offsets[w][: len(head)])
    for w in range(n0 - 1):  # consecutive windows share exactly STRIDE context tokens
        assert _ctx(feats.offsets[w])[-STRIDE:] == _ctx(feats.offsets[w + 1])[:STRIDE]
        assert _ctx(feats.offsets[w])[-STRIDE - 1] not in _ctx(feats.offsets[w + 1])
    assert _ctx(feats.offsets[0])[0][0] == 0 and _ctx(feats.offsets[n0 - 1])[-1][1] == len(LONG)


def _check_gold(feats: QAFeatures) -> int:
    """Assert gold positions for every window; return how many windows clip the answer."""
    inside, clipped = _answer_windows(feats), 0
    a, b = LONG.index(ANSWER), LONG.index(ANSWER) + len(ANSWER)
    assert inside and len(inside) < feats.example_index.count(0)
    for w, ex in enumerate(feats.example_index):
        s, e = feats.start_positions[w].item(), feats.end_positions[w].item()
        if ex == 1:
            assert feats.offsets[w][s][0] == 0 and SHORT[: feats.offsets[w][e][1]] == "paris"
        elif w in inside:
            assert LONG[feats.offsets[w][s][0] : feats.offsets[w][e][1]] == ANSWER
        else:
            assert (s, e) == (0, 0)
            ctx = _ctx(feats.offsets[w])
            clipped += ctx[0][0] < b and ctx[-1][1] > a  # overlaps the answer but not all of it
    return clipped


def test_gold_positions_map_back_to_answer(tokenizer, feats):
    _check_gold(feats)
    clipped = sum(  # window sizes where some window cuts the answer in two
        _check_gold(prepare_qa_features(_rows(), tokenizer, max_length=n, stride=2))
        for n in range(17, 23)
    )
    assert clipped > 0


def _logits(feats: QAFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    start = torch.full(feats.input_ids.shape, -10.0)  # (W, L)
    return start, start.clone()


def test_decode_best_span_in_later_window_beats_invalid_ones(feats):
    start, end = _logits(feats)
    w = _answer_windows(feats)[-1]
    assert w > 0
    s, e = feats.start_positions[w].item(), feats.end_positions[w].item()
    start[w, s], end[w, e] = 5.0, 5.0  # the answer: 10
    c0 = feats.offsets[0].index(_ctx(feats.offsets[0])[0])
    start[0, c0], end[0, c0 + 1] = 2.0, 2.0  # a valid but weaker span in the first window: 4
    start[w, e + 2], end[w, s - 1] = 9.0, 9.0  # end < start: 18
    start[:, :3], end[:, :3] = 30.0, 30.0  # [CLS] and question tokens: 60
    start[-1, 1], end[-1, 1] = 30.0, 30.0
    wb = feats.example_index.index(1)
    sb = feats.start_positions[wb].item()
    start[wb, sb], end[wb, sb] = 1.0, 1.0  # example 1: "paris"
    assert decode_spans(start, end, feats, [LONG, SHORT]) == [ANSWER, "paris"]


def test_decode_respects_max_answer_tokens(feats):
    start, end = _logits(feats)
    w = _answer_windows(feats)[-1]
    s, e = feats.start_positions[w].item(), feats.end_positions[w].item()
    n = e - s + 1
    assert n >= 2
    start[w, s], end[w, e], end[w, s] = 5.0, 5.0, 3.0  # whole answer 10, first token alone 8
    contexts = [LONG, SHORT]
    assert decode_spans(start, end, feats, contexts, max_answer_tokens=n)[0] == ANSWER
    first = LONG[feats.offsets[w][s][0] : feats.offsets[w][s][1]]
    assert decode_spans(start, end, feats, contexts, max_answer_tokens=n - 1)[0] == first


def test_decode_no_valid_span_gives_empty_string(feats):
    start, end = _logits(feats)
    for w, window in enumerate(feats.offsets):  # top start after top end in every window
        ctx = [i for i, span in enumerate(window) if span is not None]
        start[w, ctx[-1]], end[w, ctx[0]] = 5.0, 5.0
    assert decode_spans(start, end, feats, [LONG, SHORT], n_best=1) == ["", ""]
    assert all(decode_spans(start, end, feats, [LONG, SHORT], n_best=20))


def test_segments_flag(tokenizer, feats):
    flat = prepare_qa_features(
        _rows(), tokenizer, max_length=MAX_LEN, stride=STRIDE, segments=False
    )
    assert (feats.token_type_ids == 1).any()
    assert (flat.token_type_ids == 0).all()
    assert torch.equal(flat.input_ids, feats.input_ids)


@pytest.mark.parametrize(
    ("preds", "refs", "em", "f1"),
    [
        (["The Eiffel Tower."], [["eiffel tower"]], 100.0, 100.0),
        (["Paris France"], [["Paris"]], 0.0, 200 / 3),
        (["Paris France"], [["London", "paris, France", "Paris"]], 100.0, 100.0),
        ([""], [["Paris"]], 0.0, 0.0),
        (["Paris France", "Berlin"], [["Paris"], ["berlin"]], 50.0, (200 / 3 + 100) / 2),
    ],
)
def test_squad_scores(preds, refs, em, f1):
    out = squad_scores(preds, refs)
    assert out["em"] == pytest.approx(em) and out["f1"] == pytest.approx(f1)


def test_long_question_is_cut_and_bad_stride_rejected(tokenizer):
    rows = [dict(_rows()[0], question=" ".join(WORDS[:40]) + " ?")]
    feats = prepare_qa_features(rows, tokenizer, max_length=MAX_LEN, stride=STRIDE)
    for window in feats.offsets:
        assert len(_ctx(window)) > STRIDE
        assert window.index(_ctx(window)[0]) - 2 <= (MAX_LEN - 3) // 2  # question tokens
    with pytest.raises(PretrainlabError, match="probe.stride=20 with probe.max_length=24"):
        prepare_qa_features(rows, tokenizer, max_length=MAX_LEN, stride=MAX_LEN - 4)
