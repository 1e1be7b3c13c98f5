"""Generation: narration groups -> candidate NLQ questions (template, OpenAI-compatible, local HF).

Modules: `base` (the backend interface), `template`, `openai_backend`, `hf_backend`, `prompt`
(default prompt, versions in the workspace, message building), `parse` (tolerant answer
parsing), `validate` (rejections with reasons), `quality` (flags kept on candidates),
`pipeline` (the resumable, concurrent job). Heavy libraries load only inside the backends
that need them.
"""
