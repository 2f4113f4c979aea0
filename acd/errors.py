"""Errors of the routing core: a command refused, with a message for the person who sent it."""


class AcdError(Exception):
    """A command the distributor refuses; nothing was changed."""


class UnknownAgent(AcdError):
    pass


class InvalidTransition(AcdError):
    pass
