"""The safety lens's shipped default model (exemplars and public-domain AnnoMI only), its card and exemplars."""
