import sys

from sessioncheck.cli.main import main

sys.exit(main())
