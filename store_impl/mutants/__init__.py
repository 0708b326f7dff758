"""The mutant gallery: one known bug pattern per module, each a ``Store``
(``mutant:<name>`` on the command line; ``GALLERY.md`` lists them)."""
