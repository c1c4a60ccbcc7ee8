"""Training commands for the lenses that learn from labelled data (``alliance train ...``)."""
