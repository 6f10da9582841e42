"""probe.layer: a linear probe of a pooled task can read every layer, dev choosing the layer
with the weight decay; a chosen layer read alone gives the same head; bad values and places
it is not read are refused before work."""

from __future__ import annotations

import pytest

from pretrainlab.errors import PretrainlabError
from pretrainlab.probes.run import probe


def test_dev_chooses_a_layer_and_reading_it_alone_gives_the_same_head(
    probe_cfg, pretrained, tmp_path
):
    mlm = pretrained["mlm"]
    best = probe(probe_cfg(mlm, "lexical_layers", "probe.train_examples=100"), tmp_path / "best")
    tuning = best["tuning"]
    layers = tuning["grid"]["layer"]
    assert layers == list(range(len(layers))) and len(layers) >= 3  # embeddings + 2 layers
    assert tuning["chosen"]["layer"] in layers
    assert set(tuning["dev_by_layer"]) == {str(x) for x in layers}
    assert tuning["dev_by_layer"][str(tuning["chosen"]["layer"])] == max(
        tuning["dev_by_layer"].values()
    )
    chosen = tuning["chosen"]["layer"]
    alone = probe(
        probe_cfg(mlm, "lexical", "probe.train_examples=100", f"probe.layer={chosen}"),
        tmp_path / "alone",
    )
    assert alone["test"] == best["test"] and alone["tuning"]["chosen"]["layer"] == chosen
    assert best["mdl"]["bits"] == alone["mdl"]["bits"]  # the MDL probe reads the same layer


@pytest.mark.parametrize(
    "task, overrides, match",
    [
        ("lexical", ["probe.layer=first"], "probe.layer='first' is not valid"),
        ("lexical", ["probe.layer=-1"], "probe.layer=-1 is not valid"),
        ("lexical", ["probe.layer=9"], "not a layer of this encoder"),
        ("lexical_layers", ["probe.mode=finetune"], "linear probe of a classification or pair"),
        ("tagging", ["probe.layer=best"], "a tagging task"),
    ],
)
def test_a_bad_layer_is_refused(probe_cfg, pretrained, tmp_path, task, overrides, match):
    with pytest.raises(PretrainlabError, match=match):
        probe(probe_cfg(pretrained["mlm"], task, *overrides), tmp_path)
    assert not (tmp_path / "result.json").exists()
