"""`python -m resnet_core.train` (and `torchrun ... -m resnet_core.train`): train one run from the command line."""

import sys

from .cli import main

sys.exit(main())
