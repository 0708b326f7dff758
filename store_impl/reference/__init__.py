"""Reference-correct stores: what every correct backend must look like."""
