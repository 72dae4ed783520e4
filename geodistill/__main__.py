import sys

from geodistill.cli import main

sys.exit(main())
