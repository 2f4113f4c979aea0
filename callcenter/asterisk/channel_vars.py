"""Channel variables shared by the daemon and the dialplan in asterisk_conf/.

This module is the single source of the names. asterisk_conf/extensions.conf
reads them after the AGI returns; tests check that both sides agree.

The dialplan contract:

* ``CC_RESULT`` is set by the FastAGI side before the session ends:
  ``queue``  -> the caller goes to ``Queue(${CC_QUEUE})`` with ``QUEUE_PRIO``
                set from ``CC_PRIORITY``;
  ``done``   -> self-service finished, the dialplan hangs up;
  ``fallback`` (or unset: the FastAGI server was unreachable, or the daemon
  stopped mid-call) -> the caller goes to Asterisk's own ``Queue()`` on the
  fallback queue, so no call is lost because the CTI server is down.
* ``CC_QUEUE`` only ever holds a queue name from the daemon's own
  configuration; the dialplan still passes it through ``FILTER()``.
"""

CC_RESULT = "CC_RESULT"
CC_QUEUE = "CC_QUEUE"
CC_PRIORITY = "CC_PRIORITY"
CC_SKILLS = "CC_SKILLS"
CC_LANGUAGE = "CC_LANGUAGE"
CC_CALL_ID = "CC_CALL_ID"
CC_TRANSFER_TO = "CC_TRANSFER_TO"

RESULT_QUEUE = "queue"
RESULT_DONE = "done"
RESULT_FALLBACK = "fallback"
RESULT_TRANSFER = "transfer"

#: Queue used by the dialplan when the daemon gives no usable answer.
FALLBACK_QUEUE = "support"

#: Characters allowed in a queue name the daemon hands to the dialplan.
QUEUE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
