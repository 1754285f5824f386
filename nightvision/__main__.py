import sys

from nightvision.cli import main

sys.exit(main())
