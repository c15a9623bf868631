"""One rollout engine for every strategy and every target.

- :mod:`.record`: the typed, persisted rollout record (phases, routes, measurements)
- :mod:`.plane`: the :class:`~.plane.RoutingPlane` port (route, load, measure) and
  its in-memory implementation
- :mod:`.engine`: one short dispatcher, one function per strategy, each a chain of
  small idempotent ``reconcile_*`` steps
- :mod:`.host`: owns the state database, the ticking and the history

Nothing is imported here, so the value types in :mod:`.record` load without the engine.
"""
