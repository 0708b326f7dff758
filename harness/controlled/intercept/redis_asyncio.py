"""redis.asyncio: each command a store sends is a point, its reply awaited for real.

The async client's counterparts of the points of :mod:`.redis` (same
labels, same paths): ``Redis.execute_command``,
``Pipeline.immediate_execute_command`` (``WATCH`` and the reads between
``WATCH`` and ``MULTI``) and ``Pipeline.execute`` (one point for a
``MULTI``/``EXEC`` block; a pipeline without a transaction is sent one
command at a time, each after its own point).

The point is taken before the command is sent.  While its reply is
outstanding the actor's event loop waits on the socket *for real*
(:func:`sessioncheck.controlled.aio.awaiting_server`): redis.asyncio reads
every reply under its ``socket_timeout`` (5 s by default), and in virtual
time that timer would be a sleep point that lets the clock run past it and
fail a read whose reply is merely late ("Timeout reading from socket").
Redis never makes a command wait for another client (no locks; blocking
commands are not supported, as for the sync client), so the real wait is
short; the watchdog bounds it.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.controlled.intercept.context import current
from sessioncheck.controlled.intercept.redis import _command_point, _point  # one point kind for both clients
from sessioncheck.servers.redis_commands import blocking, label, transaction_label

_installed = False


def _task_label(args: tuple) -> tuple[str, str]:
    """The point of a command sent outside any actor thread; on the task
    actors' loop a command that blocks inside the server is refused, as on
    every path of this client (the task's turn would wait for it for real)."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if getattr(loop, "server", None) is not None and blocking(args):
        _command_point(args)  # refuses it
    return label(args)


def install() -> bool:
    """Patch redis.asyncio if it is importable; return whether it is."""
    global _installed
    if _installed:
        return True
    try:
        import redis.asyncio.client
    except ImportError:
        return False
    from sessioncheck.controlled.aio import awaiting_server, server_request

    Redis, Pipeline = redis.asyncio.client.Redis, redis.asyncio.client.Pipeline
    real_execute_command = Redis.execute_command
    real_immediate = Pipeline.immediate_execute_command
    real_execute = Pipeline.execute

    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if current() is None:
            async with server_request(_task_label(args)):  # a task actor's command (or no actor's)
                return await real_execute_command(self, *args, **options)
        _command_point(args)
        with awaiting_server():
            return await real_execute_command(self, *args, **options)

    async def immediate_execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if current() is None:
            async with server_request(_task_label(args)):  # a task actor's command (or no actor's)
                return await real_immediate(self, *args, **options)
        _command_point(args)
        with awaiting_server():
            return await real_immediate(self, *args, **options)

    async def execute(self: Any, raise_on_error: bool = True) -> Any:
        if current() is None:
            stack = list(self.command_stack)
            async with server_request(transaction_label(stack) if stack else None):
                return await real_execute(self, raise_on_error)
        stack = list(self.command_stack)
        if self.is_transaction or self.explicit_transaction:
            if stack or self.watching:
                _point(*transaction_label(stack))
            with awaiting_server():
                return await real_execute(self, raise_on_error)
        if not stack:
            return await real_execute(self, raise_on_error)
        responses: list = []
        try:
            for args, options in stack:
                _command_point(args)
                self.command_stack = [(args, options)]
                with awaiting_server():
                    responses += await real_execute(self, False)
        finally:
            await self.reset()
        if raise_on_error:
            self.raise_first_error(stack, responses)
        return responses

    Redis.execute_command = execute_command
    Pipeline.immediate_execute_command = immediate_execute_command
    Pipeline.execute = execute
    _installed = True
    return True
