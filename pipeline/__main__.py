"""``python -m pipeline`` runs the segpipe command."""

import sys

from pipeline.cli import main

sys.exit(main())
