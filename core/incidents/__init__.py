"""The incident domain: the incident folded from a run, Alertmanager intake, postmortems.

Modules, lowest first (each imports only those above it):

- ``severity``: SEV1–SEV5, how people and alert labels spell them, the update cadence.
- ``timeline``: timeline entries; run events and alerts as timeline lines.
- ``model``: the :class:`~quarterdeck.core.incidents.model.Incident`, roles and milestones,
  who may do what, and the fold from run events and incident signals.
- ``read``: incidents from the store (their signals, the folded incident, the newest one).
- ``postmortem``: the draft written on resolution, and ``show``'s incident block.
- ``record``: one person's action, checked and written in one transaction (resolving
  writes the postmortem).
- ``metrics``: the Prometheus collector for time to acknowledge and to resolve.
- ``intake``: the Alertmanager webhook receiver that opens incidents.
"""
