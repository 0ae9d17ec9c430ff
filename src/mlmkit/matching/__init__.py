"""Which models can run on which imagery, decided from metadata alone: `match(models, imagery) -> list[Match]`.

The rules (`rules.py`) and the band matching (`bands.py`) are the ones `predict` applies before it reads a
pixel, so a pair `match` calls runnable runs and one it refuses is refused with the same first problem.
"""

from mlmkit.matching.pairs import decide, match, pair_up, read_imagery, read_models
from mlmkit.matching.rules import Match

__all__ = ["Match", "decide", "match", "pair_up", "read_imagery", "read_models"]
