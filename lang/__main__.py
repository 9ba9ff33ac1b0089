"""`python -m lang` is the `dl` command."""
import sys

from .tools.cli import main

sys.exit(main())
