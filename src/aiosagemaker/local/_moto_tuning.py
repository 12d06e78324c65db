"""Hot spots of moto's SQS, replaced with equivalents that stay cheap as queues grow.

In moto 5, ``ReceiveMessage`` checks each returned message's retention period through
``get_queue_attributes``, and ``SendMessage`` reads ``queue.attributes``; both compute every
attribute of the queue, including three ``ApproximateNumberOfMessages*`` counts that scan all
messages with two slow clock reads per message. With 500 messages queued one
``ReceiveMessage`` of 10 took about 0.6 s, so a notification consumer could never catch up.

The replacements give the same answers (retention from the queue's own attribute; one clock
read per scan instead of two per message) and are installed once, when the emulator starts
moto. They change moto's classes for the whole process, which only matters to code that runs
moto in the same process.

``DeleteMessage`` scanned the queue twice, rebuilding each message's receipt-handle list per
comparison; it now scans once. moto's server also listed its package directory from disk on
every request to find the service; that listing is now read once. Receipt handles (185 random
letters) are drawn in one call instead of 185, from moto's own (seedable) random generator.

And moto's ``ReceiveMessage`` picks and marks messages without a lock, so two concurrent long
polls on one queue could both receive the same message, and ``DeleteMessage`` rebuilt the
message list without a lock, so a message sent meanwhile could be lost. Both now hold the
queue's message lock (a re-entrant condition, which the long-poll wait releases while waiting).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("aiosagemaker.local")

_MARK = "_aiosagemaker_tuned"


def tune_moto_sqs() -> bool:
    """Install the replacements (idempotent); ``False`` if this moto looks different."""
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs import models

    backend_cls: Any = getattr(models, "SQSBackend", None)
    queue_cls: Any = getattr(models, "Queue", None)
    if backend_cls is None or queue_cls is None:
        return False
    if getattr(backend_cls, _MARK, False):
        return True
    properties = (
        "messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )
    original = getattr(backend_cls, "is_message_valid_based_on_retention_period", None)
    if original is None or not all(
        isinstance(getattr(queue_cls, name, None), property) for name in properties
    ):
        logger.debug("moto's SQS changed; not tuning it")
        return False

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        queue = self.get_queue(queue_name)
        retention = int(queue.message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    receive = backend_cls.receive_message
    invalid_handle: Any = getattr(models, "ReceiptHandleIsInvalid", None)
    if invalid_handle is None:
        return False

    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            if receipt_handle in self.deleted_messages:
                return  # already deleted: moto (and SQS) accept that
            kept, found = [], False
            for m in self._messages:
                if m.receipt_handle == receipt_handle or receipt_handle in m._old_receipt_handles:
                    self.pending_messages.discard(m)
                    self.deleted_messages.update(m.all_receipt_handles)
                    found = True
                else:
                    kept.append(m)
            if not found:
                raise invalid_handle()
            self._messages = kept

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            return receive(self, queue_name, *args, **kwargs)

    backend_cls.receive_message = receive_message
    queue_cls.delete_message = delete_message
    backend_cls.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )
    queue_cls.messages = property(messages)
    queue_cls.approximate_number_of_messages_delayed = property(delayed)
    queue_cls.approximate_number_of_messages_not_visible = property(not_visible)
    _cache_module_listing()
    _fast_receipt_handles(models)
    setattr(backend_cls, _MARK, True)
    return True


def _fast_receipt_handles(models: Any) -> None:
    import string

    from moto.moto_api._internal import mock_random

    if not callable(getattr(models, "generate_receipt_handle", None)):
        return

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=185))

    models.generate_receipt_handle = generate_receipt_handle


def _cache_module_listing() -> None:
    from moto import backends

    listing = getattr(backends, "list_of_moto_modules", None)
    if listing is None:
        return
    modules = tuple(listing())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules
