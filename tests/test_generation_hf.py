"""The local transformers backend with a tiny random Llama built inside the test (offline).

Its answers are garbage by construction; the test pins that the pipeline runs end to end and
that every group's failure is counted with a reason instead of crashing.
"""

from __future__ import annotations

import asyncio

import pytest
from ego4d_fixtures import video, write_tree

from engine.errors import ConfigError
from engine.generation.base import Request
from engine.generation.prompt import DEFAULT_PROMPT

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [DEFAULT_PROMPT.system, DEFAULT_PROMPT.user, '{"questions": [{"narration": 1, "query": "Where?"}]}',
              "#C C picks up the knife from the table"] * 4  # fmt: skip
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def test_chat_template_and_batched_generation_give_one_reply_per_request(tiny_model):
    from engine.generation.hf_backend import HFBackend

    b = HFBackend(str(tiny_model), batch_size=2, max_new_tokens=12, device="cpu")
    texts = [["#C C picks up the knife"], ["#C C opens the fridge", "#C C closes it"], ["#C C walks"]]
    reqs = [Request(f"g{i}", DEFAULT_PROMPT.messages(t), t, [0] * len(t)) for i, t in enumerate(texts)]
    reps = asyncio.run(b.complete(reqs))
    assert len(reps) == 3 and all(not r.failed for r in reps)
    assert all(0 < r.completion_tokens <= 12 and r.prompt_tokens > 50 for r in reps)
    assert b.prompt_text(reqs[0].messages).startswith("<|system|>You are") and not b.quantized


def test_tiny_model_run_stores_every_group_with_counted_rejections(tiny_model, tmp_path):
    from engine.ego4d import load_index
    from engine.generation.pipeline import GenerationJob, make_backend
    from engine.workspace import Workspace

    root = write_tree(tmp_path / "data", videos=[video("v1", pass1=[(1.0 + 2 * j, "#C C picks up the cup") for j in range(15)])],
                      features="empty")  # fmt: skip
    backend = make_backend("hf", model=str(tiny_model), batch_size=3, max_tokens=16, device="cpu", temperature=0.0)
    stats = GenerationJob(
        load_index(root, use_cache=False), Workspace(tmp_path / "ws"), backend, checks="fast"
    ).run_sync()
    assert stats.state == "done" and stats.groups_done == 3 and stats.failed_requests == 0
    # garbage answers: every group rejected as a whole, with a reason
    assert sum(stats.rejected.values()) >= 3 and set(stats.rejected) <= {"not_json", "wrong_shape", "index_out_of_range",
                                                                         "missing_question", "not_a_question", "too_short"}  # fmt: skip
    assert stats.completion_tokens > 0


def test_missing_model_folder_is_a_config_error(tmp_path):
    from engine.generation.hf_backend import HFBackend

    with pytest.raises(ConfigError, match="config.json"):
        HFBackend(str(tmp_path / "nope"))
