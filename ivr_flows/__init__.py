"""IVR flows: the files admins edit, and the pure engine that runs them.

model, expressions, state, commands, engine, calendars, dialpatterns: pure
(no I/O, time is an argument).  loader, schemacheck, yamlpos, checks, routes,
flowset: files to validated models, every error at file:line:column.
registry, history: the hot-swappable, versioned flow set.  testing, cases,
memory: offline runs.  graph: diagrams.  ports: what the interpreter
(callcenter/ivr) needs from the CRM.  cli: ``callcenter flows``.
"""
