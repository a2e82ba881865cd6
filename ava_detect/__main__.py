import sys

from ava_detect.cli import main

if __name__ == "__main__":  # data-loader workers start with forkserver and import this module
    sys.exit(main())
