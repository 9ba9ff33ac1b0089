"""`python -m lang` is the `dl` command."""
import sys

from .cli import main

sys.exit(main())
