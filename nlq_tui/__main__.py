import sys

from nlq_tui.cli import main

sys.exit(main())
