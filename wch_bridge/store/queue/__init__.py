"""Action Scheduler's queue: rows, the pick-up queue, guarded transitions and their SQL, new rows."""
