"""Training VSLNet / VSLBase on Ego4D NLQ: config, model, data, text features, metrics.

Importing this package is cheap (no torch): import the submodules you need.

- `engine.training.config`: `ModelConfig`, `TrainConfig` (dataclasses, JSON round-trip), each field's
  `Setting` (flags, form fields, docs come from it), `TrainConfig.from_user`, the schedule rule.
- `engine.training.device`: the device, CPU threads and the torchrun rank of a run.
- `engine.training.model`: `VSLNet(cfg)`, `Outputs`, `indices_to_seconds`.
- `engine.training.data`: `load_split(...) -> Split`, `Loader` (pre-padded batches), `Batch`.
- `engine.training.text`: `build_text_encoder(...)`, `MiniLMTextEncoder`, `HFTextEncoder`,
  `GloveTextEncoder`, `TextTable` (each distinct query encoded once).
- `engine.training.metrics`: the official Ego4D NLQ recall / mIoU figures.
"""
