"""The IVR over FastAGI: the engine's commands run as AGI commands.

* :mod:`callcenter.ivr.handler` - ``IvrHandler.handle(session)``, the
  FastAGI script ``ivr``: routing, the engine loop, the contact record;
* :mod:`callcenter.ivr.agi` - one engine command as AGI commands;
* :mod:`callcenter.ivr.sanitize` - what may cross into the dialplan;
* :mod:`callcenter.ivr.reload` - the flow set service: watch, validate, swap.
"""
