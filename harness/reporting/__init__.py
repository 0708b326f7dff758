"""What a person reads: the ``story`` of a counterexample, the versioned
JSON ``report``, its ``html`` timeline and the exploration's ``coverage``."""
