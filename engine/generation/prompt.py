"""The prompt: the default text, versions kept in the workspace, and the exact messages sent.

The exchange (DESIGN.md): the user message lists the group's narrations as numbered lines
`N. text`; the model answers `{"questions": [{"narration": N, "query": "..."}]}`.

Versions live in the workspace table "prompts", one document per version
({"version", "system", "user", "created", "note"}); the setting "generation.prompt_version"
names the one in use. Editing never overwrites a version: saving a changed prompt adds a new
one, so every candidate's `prompt_version` keeps pointing at the text that produced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.errors import ConfigError

PROMPT_SETTING = "generation.prompt_version"
NARRATIONS_FIELD = "{narrations}"

DEFAULT_SYSTEM = """\
You are an expert annotator for the Ego4D Natural Language Queries (NLQ) benchmark.
You get the narrations of a short stretch of one egocentric video, in time order, numbered.
"#C C" is the camera wearer: write about them as "I". "#O" marks another person.

For EVERY numbered narration write exactly one question that the camera wearer could later ask
to find that moment in the video. Rules:
- First person ("I", "my"). Never write "#C", "#O" or "C" for the camera wearer.
- Mostly follow the official NLQ templates: Where is object X before / after event Y?
  Where is object X? Where is my object X? Where did I put X? What did I put in X?
  How many X's? What X did I Y? What X is Y? In what location did I see object X?
  Who did I interact with when I did activity X? Who did I talk to in location X?
  When did I interact with person with role X?
- At least one question must relate two of the narrations with "before" or "after".
- Ask about the moment; do not just restate the narration with a question mark.
- Every query is a single question that ends with "?".

Answer with JSON only, no prose and no code fences:
{"questions": [{"narration": 1, "query": "..."}, {"narration": 2, "query": "..."}]}
with exactly one entry per narration number."""

DEFAULT_USER = """\
Narrations:
{narrations}

Write one question for each of the narrations above, as the JSON object only."""

# JSON schema for servers that support structured output (response_format json_schema).
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "questions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "narration": {"type": "integer"},
                    "query": {"type": "string"},
                },
                "required": ["narration", "query"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["questions"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Prompt:
    version: int
    system: str
    user: str  # contains "{narrations}"
    note: str = ""

    def messages(self, narrations: list[str]) -> list[dict]:
        """The exact chat messages sent for a group with these narration texts."""
        return build_messages(self.system, self.user, narrations)


DEFAULT_PROMPT = Prompt(version=1, system=DEFAULT_SYSTEM, user=DEFAULT_USER, note="default")


def number_narrations(narrations: list[str]) -> str:
    """`N. text` lines, N from 1; newlines inside a text are flattened so numbering stays intact."""
    return "\n".join(f"{i}. {' '.join(str(t).split())}" for i, t in enumerate(narrations, 1))


def build_messages(system: str, user: str, narrations: list[str]) -> list[dict]:
    numbered = number_narrations(narrations)
    if NARRATIONS_FIELD in user:
        content = user.replace(NARRATIONS_FIELD, numbered)
    else:  # an edited prompt lost the field: still send the narrations, after the text
        content = (user.rstrip() + "\n\n" + numbered) if user.strip() else numbered
    messages = []
    if system.strip():
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": content})
    return messages


def check_prompt(system: str, user: str) -> None:
    if not (system.strip() or user.strip()):
        raise ConfigError("the prompt is empty: write a system or user message")
    if NARRATIONS_FIELD not in user:
        raise ConfigError(f"the user message must contain {NARRATIONS_FIELD} where the numbered narrations go")


def list_prompts(workspace) -> list[Prompt]:
    """Every saved version, oldest first (the default appears as version 1 once saved)."""
    docs = workspace.table("prompts").all()
    out = [Prompt(int(d["version"]), d["system"], d["user"], d.get("note", "")) for d in docs]
    return sorted(out, key=lambda p: p.version)


def _ensure_default(workspace) -> None:
    table = workspace.table("prompts")
    if not table.all():
        table.insert(
            {"version": 1, "system": DEFAULT_SYSTEM, "user": DEFAULT_USER, "created": time.time(), "note": "default"}
        )


def current_prompt(workspace=None) -> Prompt:
    """The prompt in use in this workspace (the default when there is none)."""
    if workspace is None:
        return DEFAULT_PROMPT
    prompts = list_prompts(workspace)
    if not prompts:
        return DEFAULT_PROMPT
    wanted = workspace.get(PROMPT_SETTING)
    for p in prompts:
        if p.version == wanted:
            return p
    return prompts[-1]


def get_prompt(workspace, version: int) -> Prompt:
    for p in list_prompts(workspace) if workspace is not None else [DEFAULT_PROMPT]:
        if p.version == version:
            return p
    if version == 1:
        return DEFAULT_PROMPT
    raise ConfigError(f"prompt version {version} does not exist in this workspace; see the Generate screen's versions")


def save_prompt(workspace, system: str, user: str, note: str = "") -> Prompt:
    """Make (system, user) the prompt in use; a new version unless it equals an existing one."""
    check_prompt(system, user)
    with workspace.transaction():
        _ensure_default(workspace)
        prompts = list_prompts(workspace)
        same = next((p for p in prompts if p.system == system and p.user == user), None)
        if same is None:
            version = max(p.version for p in prompts) + 1
            workspace.table("prompts").insert(
                {"version": version, "system": system, "user": user, "created": time.time(), "note": note}
            )
            same = Prompt(version, system, user, note)
    workspace.set(PROMPT_SETTING, same.version)
    return same


def use_prompt(workspace, version: int) -> Prompt:
    p = get_prompt(workspace, version)
    with workspace.transaction():
        _ensure_default(workspace)
    workspace.set(PROMPT_SETTING, p.version)
    return p


def pin_current_prompt(workspace) -> Prompt:
    """The prompt in use, saved in the workspace so its version number means something later."""
    with workspace.transaction():
        _ensure_default(workspace)
    return current_prompt(workspace)
