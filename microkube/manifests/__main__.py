"""``python -m microkube.manifests``: the deploy folder's daemon (see microkube.manifests.watch)."""

import sys

from microkube.manifests.watch import main

sys.exit(main())
