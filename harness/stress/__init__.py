"""Free-running stress: real threads and processes at full speed, a
recorded history, and the checker's verdict on it (``runner``)."""
