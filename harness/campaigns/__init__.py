"""Many searches at once: long ``fuzz`` runs across cores and the mutant
``gallery`` that measures what the harness catches."""
