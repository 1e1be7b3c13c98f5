"""The app's screens, one module each, registered by module path in `nlq_tui.app.SCREENS`.

A screen reaches shared state through `self.app.ctx` (`nlq_tui.context.AppContext`), gets
`IndexChanged` when the data is (re)loaded, keeps its styles in a `.tcss` file next to it,
and can put `nlq_tui.widgets.NavBar` at its top for the `1 Data  2 Lab ...` switcher.
"""
