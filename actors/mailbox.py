"""A stream's mailbox: its messages in order, applied at once when the stream is idle.

Every owner call and every delivery is posted here, and the stream's machine
sees them one at a time, in posting order. Who applies them depends on the
moment. Once the actor task runs, a post to an idle mailbox (nothing queued,
nothing being applied) is applied at once in the posting task: trio is
single-threaded and nothing awaits in between, so this is exactly what the
actor would do if it processed the message the moment it arrived, and it
saves two task switches per message. A post made while a message is being
applied (a peer granting credit back in the middle of this stream's own send)
is queued and applied by the same loop, right after, before control returns.
Before the actor starts (and when a test turns inlining off) posts queue and
the actor task applies them when it wakes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final

import outcome
import trio
from streamlet.codec.status import StatusCode, StreamError

from .table import Event


class Call:
    """One owner call in flight: the message, and the task parked until it is answered.

    Answered before its task parks (applied at once), the answer is kept for
    the caller to pick up (`answered`, then `value` or `outcome`); answered
    later, the task is rescheduled with it.
    """

    __slots__ = ("answered", "arg", "event", "outcome", "task", "value", "withdrawn")

    def __init__(self, event: Event, arg: object) -> None:
        self.event = event
        self.arg = arg
        self.task: trio.lowlevel.Task | None = None
        self.answered = False
        self.value: Any = None
        self.outcome: outcome.Outcome[Any] | None = None  # kept only for errors
        self.withdrawn = False

    def finish(self, result: outcome.Outcome[Any]) -> bool:
        """Answer the call; False if its caller was cancelled and no longer waits."""
        if self.withdrawn:
            return False
        task = self.task
        if task is None:
            self.answered = True
            self.outcome = result
        else:
            self.task = None
            trio.lowlevel.reschedule(task, result)
        return True

    def finish_value(self, value: Any) -> bool:
        """`finish(outcome.Value(value))`, without making the outcome when no task waits."""
        if self.withdrawn:
            return False
        task = self.task
        if task is None:
            self.answered = True
            self.value = value
        else:
            self.task = None
            trio.lowlevel.reschedule(task, outcome.Value(value))
        return True

    def pick_up(self) -> Any:
        """The answer of a call answered before its task parked: its value, or it raises."""
        result = self.outcome
        return self.value if result is None else result.unwrap()

    def abort(self, raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        """The parked caller was cancelled: withdraw the call, unless it is a close or abort."""
        if self.event is not Event.CLOSE and self.event is not Event.ABORT:
            self.withdrawn = True
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED


class Grant:
    """The peer's credit grants not applied yet, coalesced into one message."""

    __slots__ = ("increment",)

    def __init__(self, increment: int) -> None:
        self.increment = increment


Message = Call | Grant | tuple[Event, object]

# What a full mailbox means: only a peer delivering beyond its credit can fill it.
OVERRUN: Final = (
    Event.PEER_VIOLATION,
    StreamError(
        StatusCode.RESOURCE_EXHAUSTED,
        "peer protocol violation: deliveries beyond the granted credit",
    ),
)


class Mailbox:
    """One stream's messages in order, and the rule for who applies them and when."""

    __slots__ = ("_actor", "_applying", "_capacity", "_handle", "_queue", "inline", "overrun")

    def __init__(self, handle: Callable[[Message], None], capacity: int) -> None:
        self._handle = handle  # applies one message to the machine
        self._queue: deque[Message] = deque()
        self._capacity = capacity
        self._applying = False
        self._actor = trio.lowlevel.ParkingLot()
        self.inline = False  # whether a post to an idle mailbox is applied in the posting task
        self.overrun = False  # a delivery found the mailbox full

    def post(self, message: Message) -> None:
        """Queue the message; apply the queue now if the mailbox is idle and inlining is on."""
        if self._applying:
            self._queue.append(message)  # the loop applying messages takes this one next
        elif not self.inline:
            self._queue.append(message)
            self._actor.unpark()
        elif self._queue:
            self._queue.append(message)
            self.apply_all()
        else:
            self._applying = True  # the usual case: nothing queued, apply it right here
            try:
                self._handle(message)
            finally:
                self._applying = False
            if self._queue:  # posted while it was applied
                self.apply_all()

    def deliver(self, message: Message) -> None:
        """Post a delivery from the peer; a full mailbox refuses it and flags an overrun."""
        if len(self._queue) >= self._capacity:
            self.overrun = True
            self._actor.unpark()
            return
        self.post(message)

    def apply_all(self) -> None:
        """Apply every queued message in order (and an overrun, once the queue is empty).

        One loop at a time: a post made while it runs is queued and taken by it,
        so the machine never sees a message while it is applying another.
        """
        if self._applying:
            return
        self._applying = True
        try:
            queue, handle = self._queue, self._handle
            while queue:
                handle(queue.popleft())
                if self.overrun and not queue:
                    self.overrun = False
                    handle(OVERRUN)
        finally:
            self._applying = False

    def wake_actor(self) -> None:
        """Wake the actor task if it waits for messages (it also checks whether to stop)."""
        self._actor.unpark_all()

    async def wait(self) -> None:
        """The actor task: wait until a message is posted for it, or it is woken."""
        await self._actor.park()
