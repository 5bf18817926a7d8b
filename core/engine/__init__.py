"""The engine, one concept per module.

- ``runner``: :class:`Runner` composes the parts below and owns the run and stage
  lifecycle; also ``RunOptions``, ``new_run_id``, ``exit_code_for`` (re-exported for callers).
- ``journal_writer``: emit, group commit per loop turn, ``committed()``, output-line batches.
- ``scheduler``: the step DAG of a stage (graphlib ready-queue), concurrent steps.
- ``step``: one step's ``when``, attempts, retry delay, timeout, fallbacks, the action call.
- ``gates``: quality gates. ``approvals``: approval and budget gates, who may decide.
- ``signals``: polling and handling signals; pause, cancel, interrupt, rollback.
- ``recovery``: what a resumed run reuses from its journal.
- ``scope``: the names expressions see. ``context``: run-wide facts, ``RunOptions``.
- ``failures``: the exceptions the parts raise to each other.
- ``approval_policy``: approval policy files for unattended runs (``--approvals``).
"""
