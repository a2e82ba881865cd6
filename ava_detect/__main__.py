import sys

from ava_detect.cli import main

sys.exit(main())
