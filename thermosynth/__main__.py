"""Run the command line as ``python -m thermosynth``."""

import sys

from thermosynth.cli import main

sys.exit(main())
