"""Widgets shared by the screens: a virtual table, a histogram, a clip timeline, the nav bar."""

from nlq_tui.widgets.histogram import Histogram
from nlq_tui.widgets.navbar import NavBar
from nlq_tui.widgets.safe_input import SafeInput
from nlq_tui.widgets.timeline import ClipTimeline, TimelineMark
from nlq_tui.widgets.vtable import Column, VirtualTable

__all__ = ["ClipTimeline", "Column", "Histogram", "NavBar", "SafeInput", "TimelineMark", "VirtualTable"]
