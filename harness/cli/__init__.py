"""One module per ``sessioncheck`` verb: ``add_arguments`` and ``main``."""
