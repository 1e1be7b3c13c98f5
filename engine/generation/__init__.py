"""Generation: narration groups -> candidate NLQ questions (template, OpenAI-compatible, local HF).

Modules: `base` (the backend interface), `template`, `openai_backend`, `hf_backend`, `factory`
(a backend from settings), `settings` (every number a user sets, checked once), `prompt`
(default prompt, versions in the workspace, message building), `parse` (tolerant, bounded
answer parsing), `validate` (rejections with reasons, the variant's policy), `quality` (flags
kept on candidates), `groups` (which groups, their texts and windows), `build` (typed
candidates), `finish` (check and store), `pipeline` (the resumable, concurrent job), `stats`,
`estimate` (a job's cost before it runs), `preview` (dry run), `redact` (the API key never
leaves). Heavy libraries load only inside the backends that need them.
"""
