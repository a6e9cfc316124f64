import sys

from testfleet.cli.app import main

sys.exit(main())
