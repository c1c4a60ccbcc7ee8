"""Small trained heads shipped with alliance, each with a model card."""
