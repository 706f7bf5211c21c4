import sys

from potsearch.cli.app import main

sys.exit(main())
