"""The controlled engine: a program (the schedule as data) runs against a
store under a scheduler that lets one actor at a time pass a preemption
point.

Data flows one way: ``program`` (drawn by ``search``, or by the
``systematic`` pass) -> ``engine`` -> ``scheduler`` -> actors
(``thread_actor``, ``process_actor``; what runs inside them is ``actor``)
-> ``intercept`` (the points inside unmodified store code) -> a trace and
a history, cut into steps by ``trace``.  ``durability`` keeps what a power
loss would leave.
"""
