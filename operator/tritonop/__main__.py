import sys

from tritonop.cli import main

sys.exit(main())
