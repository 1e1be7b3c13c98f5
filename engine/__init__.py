"""nlq-tui's headless core: Ego4D reading, windows, generation, store, export, training, runs.

Never imports Textual. Heavy libraries (torch, transformers, openai) are imported inside the
functions that need them, so importing this package stays cheap.
"""
