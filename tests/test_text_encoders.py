"""Text encoders: per-token features, each distinct query encoded once, optional training."""

from __future__ import annotations

import pytest
import torch

from engine.errors import ConfigError, DataError
from engine.training.text import (
    GloveTextEncoder,
    HFTextEncoder,
    MiniLMTextEncoder,
    TextTable,
    build_text_encoder,
    glove_tokens,
)

WORDS = ["where", "did", "i", "put", "the", "cup", "knife", "?", "what", "cut"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def count_forwards(module):
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_bert_encoder_gives_token_features_and_encodes_each_distinct_query_once(tiny_bert):
    enc = HFTextEncoder(str(tiny_bert))
    assert enc.dim == 8 and enc.trainable_module() is None
    calls = count_forwards(enc.model)
    feats = enc.encode(["where did i put the cup?", "what did i cut?", "where did i put the cup?"])
    # [CLS] + words + ? + [SEP]
    assert [f.shape for f in feats] == [(9, 8), (7, 8), (9, 8)]
    assert feats[0].dtype == torch.float16 and torch.equal(feats[0], feats[2])
    assert len(calls) == 1  # one batch for two distinct queries
    enc.encode(["what did i cut?", "where did i put the cup?"])
    assert len(calls) == 1  # all cached
    assert not any(p.requires_grad for p in enc.model.parameters())


def test_cached_features_equal_a_fresh_forward_pass(tiny_bert):
    from transformers import AutoModel, AutoTokenizer

    enc = HFTextEncoder(str(tiny_bert))
    cached = enc.encode(["where did i put the knife?"])[0]
    tok, model = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        fresh = model(**tok(["where did i put the knife?"], return_tensors="pt")).last_hidden_state[0]
    assert torch.allclose(cached.float(), fresh, atol=1e-2)


def test_text_table_pads_and_masks_per_batch(tiny_bert):
    enc = HFTextEncoder(str(tiny_bert))
    table = TextTable.build(enc, ["what did i cut?", "where did i put the cup?"])
    assert table.features.shape == (2, 9, 8) and table.lengths.tolist() == [7, 9]
    feats, mask = table.gather(torch.tensor([0, 0]))
    assert feats.shape == (2, 7, 8) and mask.sum().item() == 14  # cut to the longest in the batch
    feats, mask = table.gather(torch.tensor([1, 0]))
    assert mask.tolist()[1] == [1.0] * 7 + [0.0] * 2
    assert torch.all(feats[1, 7:] == 0)


def test_unfrozen_bert_trains_through_encode_batch(tiny_bert):
    enc = build_text_encoder("bert", str(tiny_bert), freeze=False)
    module = enc.trainable_module()
    assert module is enc.model and module.training
    feats, mask = enc.encode_batch(["where did i put the cup?", "what did i cut?"])
    assert feats.shape == (2, 9, 8) and mask.sum(1).tolist() == [9.0, 7.0]
    (feats * mask[:, :, None]).sum().backward()
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)
    assert module.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_a_missing_bert_folder_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="no-such-model"):
        HFTextEncoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match="text_path"):
        build_text_encoder("bert", "")


def write_glove(path, dim=3):
    lines = [f"{w} " + " ".join(str(float(i * 10 + j)) for j in range(dim)) for i, w in enumerate(WORDS)]
    lines.insert(3, ". . . " + " ".join(["0.5"] * dim))  # 840B has "words" with spaces: skipped
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_glove_encoder_reads_only_the_words_it_needs(tmp_path):
    enc = GloveTextEncoder(str(write_glove(tmp_path / "g.txt")))
    assert enc.dim == 3 and enc.trainable_module() is None
    feats = enc.encode(["Where did I put the cup?", "zebra?"])
    assert feats[0].shape == (7, 3)
    assert feats[0][0].tolist() == [0.0, 1.0, 2.0]  # "where" is line 0
    assert feats[0][5].tolist() == [50.0, 51.0, 52.0]  # "cup"
    assert feats[1][0].tolist() == [0.0, 0.0, 0.0]  # unknown word: zero vector
    assert set(enc._vectors) == {"where", "did", "i", "put", "the", "cup", "?"}
    assert glove_tokens("Where’s the cup?") == ["where's", "the", "cup", "?"]


def test_glove_file_problems_are_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.txt"):
        GloveTextEncoder(str(tmp_path / "missing.txt"))
    (tmp_path / "bad.txt").write_text("hello world again\n")
    with pytest.raises(DataError, match="bad.txt"):
        GloveTextEncoder(str(tmp_path / "bad.txt"))
    with pytest.raises(ConfigError, match="glove"):
        build_text_encoder("glove", str(write_glove(tmp_path / "g.txt")), freeze=False)


def test_minilm_is_the_offline_default_with_384_d_tokens():
    enc = build_text_encoder("minilm")
    assert isinstance(enc, MiniLMTextEncoder) and enc.dim == 384
    feats = enc.encode(["where did i put the cup?"])
    assert feats[0].shape[1] == 384 and feats[0].shape[0] >= 8


def test_live_mode_runs_the_frozen_encoder_in_train_mode_with_dropout_and_no_grad(tiny_bert):
    enc = HFTextEncoder(str(tiny_bert))
    enc.model.config.hidden_dropout_prob = 0.5
    for m in enc.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.5
    texts = ["where did i put the cup?", "what did i cut?"]
    torch.manual_seed(1)
    a, mask = enc.encode_live(texts)
    b, _ = enc.encode_live(texts)
    assert not torch.equal(a, b)  # dropout on: each step sees other features, as the reference's BERT
    assert not a.requires_grad and not enc.model.training  # frozen, and back in eval mode after
    assert mask.sum(1).tolist() == [9, 7]
    with torch.no_grad():  # the model is back in eval mode: dropout off, the cached features' function
        fresh = enc._run(texts[:1], "cpu")[0][0]
    assert torch.allclose(enc.encode(texts[:1])[0].float(), fresh, atol=1e-2)
